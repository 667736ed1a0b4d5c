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


def test_experiment_path_is_the_parity_path(setup):
    """The driver's factors are eora_factors (the function the parity test checks against NVlabs) with the spec's
    defaults, which are eora_factors' defaults: block 0 sees the uncompressed inputs, so its factors can be rebuilt."""
    import inspect

    model, toks, compressed, _ = setup
    sig = inspect.signature(eora.eora_factors).parameters
    spec = eora.CompensationSpec(eora.Compensation.EORA, rank=4)
    assert spec.form is sig["form"].default and spec.clamp is sig["clamp"].default
    assert spec.form is eora.EoraForm.PROJECTION
    _, factors, _ = eora.compensate_model(model, compressed, toks, spec, batch_size=4)
    covs = eora.input_covariances(model, toks, batch_size=4)
    weights = dict(eora.compensated_weights(compressed))
    from eigenkit.nn import LINEAR_INPUTS, llama_weights

    orig = llama_weights(model)
    for name in ("q", "o", "gate", "down"):
        key = f"blocks.0.{name}"
        cov = covs[f"blocks.0.{LINEAR_INPUTS[name]}"]
        b, a = eora.eora_factors(orig[key] - weights[key], cov.astype(jnp.float64), 4)
        np.testing.assert_allclose(np.asarray(factors[key][0] @ factors[key][1]), np.asarray(b @ a), atol=1e-6)


def test_layer_errors_on_uncompressed_inputs(setup):
    model, toks, compressed, report = setup
    covs = eora.input_covariances(model, toks, batch_size=4)
    assert len(covs) == 2 * 4 and covs["blocks.1.down_in"].shape == (24, 24)
    none = eora.layer_errors(model, compressed, covs)
    assert [(r["layer"], r["name"]) for r in none] == [(r["layer"], r["name"]) for r in report]
    # block 0 sees the same inputs in both passes, so its errors equal the compression report's
    for r0, r1 in zip(none[:7], report[:7], strict=True):
        np.testing.assert_allclose(r0["rel_err"], r1["rel_err"], rtol=1e-4)
    _, f, _ = eora.compensate_model(model, compressed, None, eora.CompensationSpec(eora.Compensation.SVD, 24))
    full = eora.layer_errors(model, eora.compensated_weights(compressed, f), covs)
    assert max(r["rel_err"] for r in full) < 1e-4  # full-rank SVD restores W
    with pytest.raises(ValueError, match="input_covariances"):
        eora.layer_errors(model, compressed, {})
