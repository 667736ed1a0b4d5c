"""``param_dtype`` reaches every parameter of every S4D module, and a float64 module runs under strict promotion
(``tests/conftest.py`` sets ``jax_numpy_dtype_promotion = "strict"`` and enables float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D, Norm, S4DConv, S4DModel, Transform
from eigenkit.train import param_path


def _dtypes(module, kind=nnx.Param):
    return {param_path(p): v.dtype for p, v in jax.tree_util.tree_leaves_with_path(nnx.state(module, kind))}


def _x(shape, dtype, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def test_strict_promotion_is_on():
    assert jax.config.jax_numpy_dtype_promotion == "strict" and jax.config.jax_enable_x64
    with pytest.raises(jax.dtypes.TypePromotionError):
        jnp.ones(2, jnp.float32) + jnp.ones(2, jnp.float64)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
def test_s4d_layer_params_follow_param_dtype(dtype):
    layer = S4D(4, 8, init=ssm.Init.LIN, param_dtype=dtype, rngs=nnx.Rngs(0))
    got = _dtypes(layer)
    assert set(got) >= {"output_linear/kernel", "output_linear/bias", "ssm/log_dt", "ssm/C", "ssm/D"}
    assert all(d == jnp.dtype(dtype) for d in got.values()), got
    y = nnx.jit(lambda m, u: m(u))(layer, _x((2, 16, 4), dtype))
    assert y.dtype == dtype and y.shape == (2, 16, 4)


def test_s4d_float64_forward_backward_and_step_strict():
    """Convolution mode, its gradient, and recurrent mode of a float64 layer: all float64, no promotion error."""
    layer = S4D(4, 8, init=ssm.Init.INV, channels=2, n_ssm=2, dt_transform=Transform.SOFTPLUS,
                param_dtype=jnp.float64, rngs=nnx.Rngs(1))
    assert all(d == jnp.float64 for d in _dtypes(layer).values())
    u = _x((2, 12, 4), jnp.float64)
    g = nnx.jit(nnx.grad(lambda m: jnp.mean(m(u) ** 2)))(layer)
    assert all(v.dtype == jnp.float64 for v in jax.tree.leaves(g))
    y, s = layer.step(layer.init_state(2), u[:, 0])
    assert y.dtype == jnp.float64 and s.dtype == jnp.complex128
    # ssm_params in complex form: complex128 / float64
    A, B, C, dt = layer.ssm.ssm_params()
    assert (A.dtype, B.dtype, C.dtype, dt.dtype) == (jnp.complex128,) * 3 + (jnp.float64,)


@pytest.mark.parametrize("norm", [Norm.LAYER, Norm.BATCH])
def test_s4d_model_float64_params_and_stats(norm):
    m = S4DModel(2, 3, d_model=4, d_state=4, n_layers=2, norm=norm, dropout=0.0, init=ssm.Init.LIN,
                 param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    got = _dtypes(m)
    assert {k.split("/")[0] for k in got} == {"encoder", "layers", "norms", "decoder"}
    assert all(d == jnp.float64 for d in got.values()), {k: v for k, v in got.items() if v != jnp.float64}
    stats = _dtypes(m, nnx.BatchStat)
    assert bool(stats) == (norm is Norm.BATCH) and all(d == jnp.float64 for d in stats.values())
    x = _x((3, 10, 2), jnp.float64)
    m.train()
    logits = nnx.jit(lambda m, x: m(x))(m, x)  # train mode: BatchNorm statistics are updated in float64
    assert logits.dtype == jnp.float64 and logits.shape == (3, 3)
    assert all(d == jnp.float64 for d in _dtypes(m, nnx.BatchStat).values())
    m.eval()
    f = nnx.jit(lambda m, x: m.features(x))(m, x)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m.generate_features(x))(m, x), f, rtol=1e-9, atol=1e-9)


def test_float32_default_unchanged():
    m = S4DModel(1, 2, d_model=4, d_state=4, n_layers=1, norm=Norm.BATCH, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    assert all(d == jnp.float32 for d in _dtypes(m).values())
    assert all(d == jnp.float32 for d in _dtypes(m, nnx.BatchStat).values())


def test_bad_param_dtype():
    for cls in (S4DConv, S4D):
        with pytest.raises(TypeError, match="param_dtype must be float32 or float64"):
            cls(4, 8, init=ssm.Init.LIN, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
