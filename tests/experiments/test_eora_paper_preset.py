"""The EoRA paper preset's own code path (HF checkpoint streamed block by block, WikiText-2 protocol) on a tiny
replica: a random LLaMA written as a Hugging Face folder with a word-level tokenizer.json, and a WikiText-2 raw
folder; only sizes are overridden. The streamed cells equal the in-memory driver on the same token sets."""

import math

import numpy as np
import pytest
from flax import nnx

from eigenkit.data import MissingDataError, write_hf_llama
from eigenkit.methods import eora
from eigenkit.nn import LlamaConfig, LlamaModel, RopeLayout, llama_from_weights, llama_weights
from experiments.__main__ import apply_overrides
from experiments.eora import train
from experiments.eora.configs import cpu, paper, smoke

VOCAB = 32
CFG = LlamaConfig(vocab_size=VOCAB, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=24,
                  rope_theta=500000.0, tie_embeddings=False, rope_layout=RopeLayout.HALF)


def _words(rng, n):
    return " ".join(f"w{i}" for i in rng.integers(0, VOCAB - 2, n))


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    root = tmp_path_factory.mktemp("eora_paper")
    model_dir, data_dir = root / "Meta-Llama-3-8B", root / "wikitext-2-raw-v1"
    write_hf_llama(model_dir, CFG, {k: np.asarray(v) for k, v in llama_weights(LlamaModel(
        CFG, rngs=nnx.Rngs(0))).items()}, bf16=True, shards=2)
    vocab = {"<|begin_of_text|>": 0, "<unk>": 1, **{f"w{i}": i + 2 for i in range(VOCAB - 2)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    tok.save(str(model_dir / "tokenizer.json"))
    rng = np.random.default_rng(0)
    data_dir.mkdir()
    for split, lines in (("train", 12), ("valid", 2), ("test", 6)):
        text = "".join(f" = {_words(rng, 2)} = \n \n {_words(rng, 12)} \n \n" for _ in range(lines))
        (data_dir / f"wiki.{split}.raw").write_text(text, encoding="utf-8")
    return model_dir, data_dir


def _tiny(model_dir, data_dir):
    c = paper.get_config()
    apply_overrides(c, [f"--config.model_path={model_dir}", f"--config.data_dir={data_dir}"])
    c.update(dict(seq_len=16, compress_passages=6, eora_passages=5, eval_passages=0, batch_size=4, ranks=(2,),
                  compressions=("gptq3",)))
    return c


def test_paper_preset_is_the_official_protocol():
    c = paper.get_config()
    assert (c.model, c.calibration, c.seq_len, c.compress_passages, c.eora_passages, c.eval_passages, c.seed) == \
        ("hf", "wikitext2", 2048, 128, 64, 0, 0)
    assert tuple(c.ranks) == (128,) and tuple(c.methods) == ("svd", "eora")
    assert tuple(c.compressions) == ("sparsegpt24", "wanda24", "gptq3", "gptq4_sparsegpt24")
    assert all(k in train.COMPRESSIONS for k in c.compressions)
    assert c.expected_device and c.expected_memory
    assert "--config.model_path=" in paper.__doc__ and "--config.data_dir=" in paper.__doc__
    for other in (cpu.get_config(), smoke.get_config()):  # the small presets keep their keys (and config hashes)
        assert "model_path" not in other and "calibration" not in other and other.model != "hf"


def test_paper_preset_needs_the_users_files(tmp_path):
    c = paper.get_config()
    with pytest.raises(MissingDataError, match="model_path"):
        train.train_and_evaluate(c, str(tmp_path / "w"))


def test_paper_code_path_on_a_tiny_replica(replica, tmp_path):
    model_dir, data_dir = replica
    c = _tiny(model_dir, data_dir)
    result = train.train_and_evaluate(c, str(tmp_path / "work"))
    names = {m.name: m.values[0] for m in result.metrics}
    want = {"ppl_uncompressed", "ppl_gptq3_none", "ppl_gptq3_svd2", "ppl_gptq3_eora2"}
    assert set(names) == want and all(math.isfinite(v) and v > 1 for v in names.values())
    assert not (tmp_path / "work" / "stores" / "gptq3").exists()  # removed once the compression is done
    assert "| gptq3 |" in result.tables["held-out perplexity"]
    assert result.extras["tokens_per_set"]["compress"] == 6 * 16
    assert result.extras["device_memory_this_run"]["peak_live_bytes"] > 0
    assert 0 < result.extras["calib_err_gptq3_eora2"] < result.extras["calib_err_gptq3_none"]

    # the same token sets through the in-memory driver (checkpoint loaded whole)
    from eigenkit.data import HFLlamaCheckpoint, hf_llama_tokenizer

    ck = HFLlamaCheckpoint(model_dir)
    sets = train.wikitext2_sets(c, hf_llama_tokenizer(model_dir))
    assert sets["heldout"].shape[1] == 16 and sets["heldout"][0, 0] == 0  # the test text starts with BOS
    assert result.extras["tokens_per_set"]["heldout"] == sets["heldout"].size
    model = llama_from_weights(ck.config, ck.weights())
    comp, _ = eora.compress_model(model, sets["compress"], train.COMPRESSIONS["gptq3"], batch_size=4)
    eora_model, _, _ = eora.compensate_model(model, comp, sets["eora"], train.eora_spec(c, 2), batch_size=4)
    svd_model, _, _ = eora.compensate_model(model, comp, None, eora.CompensationSpec(eora.Compensation.SVD, 2))
    ref = {"ppl_uncompressed": model, "ppl_gptq3_none": eora.apply_factors(model, comp),
           "ppl_gptq3_svd2": svd_model, "ppl_gptq3_eora2": eora_model}
    for k, m in ref.items():
        np.testing.assert_allclose(names[k], eora.perplexity(m, sets["heldout"], batch_size=4), rtol=1e-5, err_msg=k)

    # a second run resumes from cells.json (no pass recomputed) and gives the same table
    again = train.train_and_evaluate(c, str(tmp_path / "work"))
    assert {m.name: m.values[0] for m in again.metrics} == names


def test_in_memory_path_loads_the_same_model_and_sets(replica):
    """``stream=False`` (small checkpoints): the whole checkpoint as a LlamaModel and the same WikiText-2 sets."""
    from eigenkit.data import HFLlamaCheckpoint, hf_llama_tokenizer

    model_dir, data_dir = replica
    c = _tiny(model_dir, data_dir)
    c.stream = False
    model, sets = train._load(c)
    ref = HFLlamaCheckpoint(model_dir).weights()
    for k, v in llama_weights(model).items():
        np.testing.assert_array_equal(np.asarray(v), ref[k], err_msg=k)
    want = train.wikitext2_sets(c, hf_llama_tokenizer(model_dir))
    for k in ("compress", "eora", "heldout"):
        np.testing.assert_array_equal(sets[k], want[k])
    assert not np.array_equal(sets["compress"][:5], sets["eora"])  # seed and seed + 1
    c.calibration = "austen"
    with pytest.raises(ValueError, match="wikitext2"):
        train._load(c)
