"""S4D NNX layers and model: convolution mode == recurrent mode, optimiser groups, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D, Norm, S4DConv, S4DModel, s4d_optimizer, s4d_param_labels
from eigenkit.train import param_path


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.mark.parametrize("disc", list(ssm.Discretization))
def test_layer_conv_equals_step(disc):
    layer = S4D(6, 8, init=ssm.Init.INV, discretization=disc, rngs=nnx.Rngs(1))
    layer.eval()
    u = _x((2, 40, 6))
    y_conv = nnx.jit(lambda m, u: m(u))(layer, u)

    @nnx.jit
    def run_steps(m, u):
        def body(s, u_k):
            y, s = m.step(s, u_k)
            return s, y

        _, ys = jax.lax.scan(body, m.init_state(u.shape[0]), jnp.swapaxes(u, 0, 1))
        return jnp.swapaxes(ys, 0, 1)

    y_step = run_steps(layer, u)
    assert y_conv.shape == (2, 40, 6) and y_conv.dtype == jnp.float32
    np.testing.assert_allclose(y_step, y_conv, rtol=1e-4, atol=2e-5 * float(jnp.max(jnp.abs(y_conv))))


@pytest.mark.parametrize(
    "norm,prenorm,init",
    [
        (Norm.LAYER, False, ssm.Init.LIN),
        pytest.param(Norm.BATCH, True, ssm.Init.LEGS, marks=pytest.mark.slow),
        pytest.param(Norm.BATCH, False, ssm.Init.REAL, marks=pytest.mark.slow),
    ],
)
def test_model_conv_equals_step(norm, prenorm, init):
    """Full model in eval mode: features and pooled logits agree between convolution and recurrent mode."""
    m = S4DModel(3, 4, d_model=8, d_state=8, n_layers=2, dropout=0.2, norm=norm, prenorm=prenorm, init=init,
                 rngs=nnx.Rngs(0))
    x = _x((2, 64, 3))
    if norm is Norm.BATCH:  # give BatchNorm non-trivial running statistics first
        m.train()
        nnx.jit(lambda m, x: m(x))(m, x * 2.0 + 1.0)
    m.eval()
    f_conv = nnx.jit(lambda m, x: m.features(x))(m, x)
    f_step = nnx.jit(lambda m, x: m.generate_features(x))(m, x)
    np.testing.assert_allclose(f_step, f_conv, rtol=1e-4, atol=1e-4)
    logits = nnx.jit(lambda m, x: m(x))(m, x)
    np.testing.assert_allclose(m.decoder(jnp.mean(f_step, axis=1)), logits, rtol=1e-4, atol=1e-4)
    # causality: perturbing x at t = 10 leaves features before 10 unchanged
    f2 = nnx.jit(lambda m, x: m.features(x))(m, x.at[:, 10].add(3.0))
    np.testing.assert_allclose(f2[:, :10], f_conv[:, :10], rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(f2[:, 10:] - f_conv[:, 10:]))) > 1e-3


def test_bidirectional_layer():
    conv = S4DConv(3, 4, bidirectional=True, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    assert conv.C.shape == (2, 3, 2, 2)
    u = _x((1, 12, 3))
    fwd = nnx.jit(lambda m, u: m(u))
    y = fwd(conv, u)
    k = nnx.jit(lambda m: m.kernel(12))(conv)
    want = jax.jit(ssm.fft_conv)(u[0], ssm.bidirectional_kernel(k[0], k[1]), conv.D[0])
    np.testing.assert_allclose(y[0], want, rtol=1e-5, atol=1e-6)
    # the output at t depends on future inputs (t+1), unlike the causal layer
    u2 = u.at[0, 5].add(1.0)
    assert float(jnp.max(jnp.abs(fwd(conv, u2)[0, 4] - y[0, 4]))) > 0
    with pytest.raises(ValueError, match="bidirectional"):
        conv.step(conv.init_state(1), u[:, 0])


def test_optimizer_groups_lr_and_weight_decay():
    """SSM params (log_dt, log_A_real, A_imag, B) move by ~ssm_lr with wd 0; the rest by ~lr and are decayed."""
    m = S4DModel(1, 2, d_model=4, d_state=4, n_layers=1, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    params = nnx.state(m, nnx.Param)
    labels = s4d_param_labels(params)
    flat = {param_path(p): v for p, v in jax.tree_util.tree_leaves_with_path(labels)}
    ssm_names = sorted(k.split("/")[-1] for k, v in flat.items() if v == "ssm")
    assert ssm_names == ["A_imag", "B", "log_A_real", "log_dt"]
    assert all(v == "default" for k, v in flat.items() if k.endswith("ssm/C") or k.endswith("/D"))
    labels_scalar = s4d_param_labels(params, c_with_ssm_lr=True)
    assert "ssm_c" in jax.tree.leaves(labels_scalar)

    tx = s4d_optimizer(params, lr=0.1, weight_decay=0.5, ssm_lr=0.001, total_steps=1000)
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def one_update(grads, params):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(grads, tx.init(params), params)[0]

    upd = one_update(grads, params)
    u = {param_path(q): v for q, v in jax.tree_util.tree_leaves_with_path(upd)}
    p = {param_path(q): v for q, v in jax.tree_util.tree_leaves_with_path(params)}
    for name, val in u.items():
        if flat[name] == "ssm":  # Adam step of size lr, no decay term
            np.testing.assert_allclose(val, -0.001, rtol=1e-3)
        else:  # lr·(1 + wd·param)
            np.testing.assert_allclose(val, -0.1 * (1 + 0.5 * p[name]), rtol=1e-3, atol=1e-6)
    assert isinstance(tx, optax.GradientTransformation)


@pytest.mark.slow
def test_grad_through_layer_is_finite():
    m = S4D(4, 8, init=ssm.Init.LEGS, rngs=nnx.Rngs(0))
    u = _x((2, 32, 4))

    def loss(m):
        return jnp.mean(m(u) ** 2)

    g = nnx.jit(nnx.grad(loss))(m)
    leaves = jax.tree.leaves(g)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
    assert float(jnp.abs(g.ssm.log_dt[...]).sum()) > 0 and float(jnp.abs(g.ssm.A_imag[...]).sum()) > 0


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        S4DConv(4, 7, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="Init"):
        S4DConv(4, 8, init="diag-lin", rngs=nnx.Rngs(0))
    layer = S4DConv(4, 8, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rank 3"):
        layer(jnp.zeros((16, 4), jnp.float32))
    with pytest.raises(ValueError, match="shape"):
        layer(jnp.zeros((1, 16, 5), jnp.float32))
    with pytest.raises(TypeError, match="floating"):
        layer(jnp.zeros((1, 16, 4), jnp.int32))


def test_batch_chunks_same_outputs_and_grads():
    """batch_chunks > 1 (rematerialised chunks) gives the same outputs and gradients as the plain layer."""
    a = S4D(4, 8, init=ssm.Init.LIN, batch_chunks=1, rngs=nnx.Rngs(0))
    b = S4D(4, 8, init=ssm.Init.LIN, batch_chunks=2, rngs=nnx.Rngs(0))
    u = _x((4, 16, 4))

    @nnx.jit
    def value_and_grad(m, u):
        return nnx.value_and_grad(lambda m: jnp.mean(jnp.sin(m(u))))(m)

    va, ga = value_and_grad(a, u)
    vb, gb = value_and_grad(b, u)
    np.testing.assert_allclose(vb, va, rtol=1e-5)
    for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        b(_x((3, 16, 4)))
    c = S4D(4, 8, init=ssm.Init.LIN, dropout=0.1, batch_chunks=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout"):
        c(u)
