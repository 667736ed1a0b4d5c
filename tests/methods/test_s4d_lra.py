"""S4D pieces of the LRA presets: token-embedding encoder, pooling restricted to the valid lengths, and the official
optimiser groups (dict lr with ``dt: null``; no weight decay on the backbone's biases and norms)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import Norm, Pooling, S4DModel, s4d_param_labels
from eigenkit.train import param_path


@nnx.jit
def _apply(model, x, lengths=None):
    """``model(x, lengths=lengths)`` compiled once per shape (eager op-by-op dispatch is slower on CPU)."""
    return model(x, lengths=lengths)


def _model(pooling=Pooling.MEAN, n_layers=2, **kw):
    m = S4DModel(18, 10, d_model=8, d_state=4, n_layers=n_layers, dropout=0.0, norm=Norm.LAYER, pooling=pooling,
                 tokens=True, init=ssm.Init.LIN, rngs=nnx.Rngs(0), **kw)
    m.eval()
    return m


@pytest.mark.parametrize("pooling", [Pooling.MEAN, Pooling.LAST])
def test_lengths_pool_equals_the_unpadded_sequence(pooling):
    """A causal model on a padded batch with lengths == the same model on each unpadded sequence alone."""
    m = _model(pooling, n_layers=1)
    rng = np.random.default_rng(0)
    lengths = np.array([5, 12, 1], np.int32)
    x = np.zeros((3, 12), np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(3, 18, n)
    got = _apply(m, jnp.asarray(x), jnp.asarray(lengths))
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(got[i], _apply(m, jnp.asarray(x[i:i + 1, :n]))[0], rtol=2e-5, atol=2e-6)
    # without lengths the padding is pooled too (different numbers for the padded rows)
    assert not np.allclose(_apply(m, jnp.asarray(x))[0], got[0], atol=1e-4)


def test_masked_mean_is_the_mean_over_valid_features():
    m = _model(bidirectional=True)  # bidirectional: the backbone sees the padding, only the pool is masked
    x = jnp.asarray(np.random.default_rng(1).integers(0, 18, (3, 10)), jnp.int32)
    lengths = jnp.array([10, 4, 7], jnp.int32)
    h = m.features(x)
    want = jnp.stack([h[i, :n].mean(0) for i, n in enumerate([10, 4, 7])]) @ m.decoder.kernel[...] + m.decoder.bias[...]
    np.testing.assert_allclose(m(x, lengths=lengths), want, rtol=2e-5, atol=2e-6)


def test_token_encoder_checks_and_recurrent_mode():
    m = _model()
    with pytest.raises(TypeError, match="x"):
        m(jnp.ones((2, 5), jnp.float32))
    with pytest.raises(ValueError, match="x"):
        m(jnp.ones((2, 5, 1), jnp.int32))
    x = jnp.asarray(np.random.default_rng(2).integers(0, 18, (2, 16)), jnp.int32)
    np.testing.assert_allclose(m.generate_features(x), m.features(x), rtol=1e-4, atol=1e-5)
    assert m.encoder.embedding[...].shape == (18, 8)


def _labels(**kw):
    m = S4DModel(3, 10, d_model=8, d_state=4, n_layers=2, norm=Norm.BATCH, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    labels = s4d_param_labels(nnx.state(m, nnx.Param), **kw)
    return {param_path(p): lab for p, lab in jax.tree_util.tree_flatten_with_path(labels)[0]}


def test_official_optimizer_groups():
    default = _labels()
    assert default["layers/0/ssm/log_dt"] == "ssm" and default["norms/0/scale"] == "default"
    assert default["layers/1/output_linear/bias"] == "default"
    lo = _labels(dt_with_ssm_lr=False, decay_bias_and_norm=False)  # the ListOps config
    assert lo["layers/0/ssm/log_dt"] == "ssm_dt" and lo["layers/1/ssm/B"] == "ssm" and lo["layers/0/ssm/C"] == "default"
    assert lo["layers/1/output_linear/bias"] == "no_decay" and lo["norms/0/scale"] == lo["norms/1/bias"] == "no_decay"
    # outside the backbone (official add_optimizer_hooks is applied to the backbone only) and D / kernels: decayed
    for k in ("encoder/bias", "encoder/kernel", "decoder/bias", "layers/0/ssm/D", "layers/0/output_linear/kernel"):
        assert lo[k] == "default", k
    img = _labels(c_with_ssm_lr=True, decay_bias_and_norm=False)  # the sCIFAR config (scalar lr)
    assert img["layers/0/ssm/log_dt"] == "ssm" and img["layers/0/ssm/C"] == "ssm_c"
