"""Layer-sequential driver on a tiny random LLaMA: exact recovery at full rank, EoRA < compressed error, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.methods import eora
from eigenkit.nn import LlamaConfig, LlamaModel

CFG = LlamaConfig(vocab_size=48, dim=16, num_layers=2, num_heads=4, num_kv_heads=2, hidden_dim=24)
SPEC = eora.CompressionSpec(quantizer=eora.Quantizer.GPTQ, bits=3, block_size=8)


@pytest.fixture(scope="module")
def setup():
    model = LlamaModel(CFG, rngs=nnx.Rngs(0))
    toks = np.random.default_rng(0).integers(0, 48, (6, 12)).astype(np.int32)  # 72 tokens > hidden_dim: S full rank
    compressed, report = eora.compress_model(model, toks, SPEC, batch_size=4)
    return model, toks, compressed, report


def test_compression_report_and_weights(setup):
    model, toks, compressed, report = setup
    assert len(compressed) == 2 * 7 and len(report) == 14
    assert all(0 < r["rel_err"] < 1 for r in report)
    w_c = np.asarray(compressed["blocks.1.gate"])
    for row in w_c:
        assert len(np.unique(row)) <= 8  # 3-bit grid per row


def test_full_rank_eora_recovers_model(setup):
    model, toks, compressed, _ = setup
    # rank >= min(d_out, d_in) for every linear (capped per layer)
    full = eora.CompensationSpec(eora.Compensation.EORA, rank=24)
    new, factors, report = eora.compensate_model(model, compressed, toks, full, batch_size=4)
    assert len(factors) == 14
    np.testing.assert_allclose(np.asarray(new(jnp.asarray(toks))), np.asarray(model(jnp.asarray(toks))), atol=1e-4)
    assert all(r["rel_err_compensated"] < 1e-4 for r in report)


@pytest.mark.parametrize("method", [eora.Compensation.EORA, eora.Compensation.EORA_CHOLESKY])
def test_low_rank_compensation_reduces_layer_error(setup, method):
    model, toks, compressed, _ = setup
    new, factors, report = eora.compensate_model(model, compressed, toks, eora.CompensationSpec(method, rank=4),
                                                 batch_size=4)
    assert all(r["rel_err_compensated"] < r["rel_err_compressed"] for r in report)
    b, a = factors["blocks.0.q"]
    assert b.shape == (16, 4) and a.shape == (4, 16)
    p_none = eora.perplexity(eora.apply_factors(model, compressed), toks)
    assert np.isfinite(p_none) and np.isfinite(eora.perplexity(new, toks))


def test_svd_truncation_and_compensated_layers_under_jit(setup):
    model, toks, compressed, _ = setup
    _, f8, _ = eora.compensate_model(model, compressed, None, eora.CompensationSpec(eora.Compensation.SVD, 8))
    _, f4, _ = eora.compensate_model(model, compressed, None, eora.CompensationSpec(eora.Compensation.SVD, 4))
    for k in f4:
        np.testing.assert_allclose(np.asarray(jnp.matmul(*eora.truncate_factors(f8, 4)[k])),
                                   np.asarray(jnp.matmul(*f4[k])), atol=1e-5)
    # a compensated (quantised W_c + low-rank) layer and the whole compensated model run under jit
    b, a = f4["blocks.0.up"]
    x = jnp.ones((3, 16), jnp.float32)
    y = jax.jit(eora.compensated_linear)(x, compressed["blocks.0.up"], b, a)
    np.testing.assert_allclose(np.asarray(y), np.asarray(x @ (compressed["blocks.0.up"] + b @ a).T), atol=1e-5)
    new = eora.apply_factors(model, compressed, f4)
    graphdef, state = nnx.split(new)
    logits = jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))(state, jnp.asarray(toks))
    assert logits.shape == (6, 12, 48) and np.all(np.isfinite(np.asarray(logits)))


def test_driver_bad_inputs(setup):
    model, toks, compressed, _ = setup
    with pytest.raises(ValueError, match="calib_tokens"):
        eora.compensate_model(model, compressed, None, eora.CompensationSpec(eora.Compensation.EORA, 4))
    with pytest.raises(ValueError, match="2-D integer"):
        eora.compress_model(model, np.zeros((2, 3, 4)), SPEC)
    with pytest.raises(ValueError, match="rank must be"):
        eora.compensate_model(model, compressed, toks, eora.CompensationSpec(eora.Compensation.EORA, 0))
