"""Options of the full official kernel expressed by :class:`S4DConv`, each checked against the functional API of
:mod:`eigenkit.ssm` on the module's raw parameters: softplus ``dt`` / ``Re A`` transforms, ``n_ssm < H`` shared
``(A, B)``, ``channels > 1`` (with and without bidirectional), and recurrent mode with these options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D, S4DConv, Transform

F64 = jnp.float64
TOL = dict(rtol=1e-10, atol=1e-12)


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), F64)


def _c(p):
    return jax.lax.complex(p[..., 0], p[..., 1])


def _functional_kernel(conv, length, A, dt):
    """ssm.ssm_kernel on (A (H, N/2) or (N/2,), B tiled as A, C, dt) built by hand from the raw parameters."""
    B = _c(conv.B[...])
    B = B[0] if A.ndim == 1 else jnp.tile(B, (conv.d_model // conv.n_ssm, 1))
    return ssm.ssm_kernel(A, B, _c(conv.C[...]), dt, length, discretization=conv.discretization)


def test_softplus_dt():
    """dt = softplus(log_dt); init gives the same dt as the exp parameterisation (same key)."""
    kw = dict(init=ssm.Init.LIN, param_dtype=F64)
    e = S4DConv(4, 8, rngs=nnx.Rngs(0), **kw)
    s = S4DConv(4, 8, dt_transform=Transform.SOFTPLUS, rngs=nnx.Rngs(0), **kw)
    np.testing.assert_allclose(s.ssm_params()[3], e.ssm_params()[3], **TOL)
    np.testing.assert_allclose(jax.nn.softplus(s.log_dt[...]), jnp.exp(e.log_dt[...]), **TOL)
    s.log_dt[...] = s.log_dt[...] + 0.3  # move off the init: the two transforms now differ
    A = jax.lax.complex(-jnp.exp(s.log_A_real[...]), s.A_imag[...])
    want = _functional_kernel(s, 32, A, jax.nn.softplus(s.log_dt[...]))
    np.testing.assert_allclose(s.kernel(32), want, **TOL)
    assert float(jnp.max(jnp.abs(want - _functional_kernel(s, 32, A, jnp.exp(s.log_dt[...]))))) > 1e-3


def test_softplus_real_part():
    """Re A = -softplus(log_A_real); init gives the same A as the exp parameterisation."""
    kw = dict(init=ssm.Init.INV, param_dtype=F64)
    e = S4DConv(4, 8, rngs=nnx.Rngs(0), **kw)
    s = S4DConv(4, 8, real_transform=Transform.SOFTPLUS, rngs=nnx.Rngs(0), **kw)
    np.testing.assert_allclose(s.ssm_params()[0], e.ssm_params()[0], **TOL)
    s.log_A_real[...] = s.log_A_real[...] - 0.5
    A = jax.lax.complex(-jax.nn.softplus(s.log_A_real[...]), s.A_imag[...])
    np.testing.assert_allclose(s.kernel(32), _functional_kernel(s, 32, A, jnp.exp(s.log_dt[...])), **TOL)


def test_n_ssm_one_shared_over_features():
    """n_ssm = 1: one (A, B) of shape (1, N/2) == the functional API's shared (N/2,) A."""
    conv = S4DConv(4, 8, init=ssm.Init.LEGS, n_ssm=1, param_dtype=F64, rngs=nnx.Rngs(0))
    assert conv.log_A_real.shape == conv.A_imag.shape == (1, 4) and conv.B.shape == (1, 4, 2)
    A = jax.lax.complex(-jnp.exp(conv.log_A_real[...]), conv.A_imag[...])[0]  # (N/2,)
    np.testing.assert_allclose(conv.kernel(24), _functional_kernel(conv, 24, A, jnp.exp(conv.log_dt[...])), **TOL)


def test_n_ssm_tiles_copies_over_features():
    """1 < n_ssm < H: feature h uses copy h mod n_ssm (official repeat 't n -> (v t) n')."""
    conv = S4DConv(6, 8, init=ssm.Init.LIN, n_ssm=2, param_dtype=F64, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)
    conv.log_A_real[...] = jnp.asarray(rng.normal(size=(2, 4)) * 0.3 + np.log(0.5))  # two distinct copies
    conv.A_imag[...] = jnp.asarray(rng.uniform(0, 5, size=(2, 4)))
    conv.B[...] = jnp.asarray(rng.normal(size=(2, 4, 2)))
    k = conv.kernel(20)
    A = jax.lax.complex(-jnp.exp(conv.log_A_real[...]), conv.A_imag[...])
    B, C, dt = _c(conv.B[...]), _c(conv.C[...]), jnp.exp(conv.log_dt[...])
    for h in range(6):  # per feature, with its own copy, through the functional API
        kh = ssm.ssm_kernel(A[h % 2][None], B[h % 2][None], C[:, h:h + 1], dt[h:h + 1], 20)
        np.testing.assert_allclose(k[:, h], kh[:, 0], **TOL)
    with pytest.raises(ValueError, match="n_ssm must divide d_model"):
        S4DConv(6, 8, init=ssm.Init.LIN, n_ssm=4, rngs=nnx.Rngs(0))


def test_two_channels_causal():
    """channels = 2: y (batch, L, 2H) = [K_0 * u + D_0 u, K_1 * u + D_1 u] (channel-major), and conv == step."""
    conv = S4DConv(3, 8, init=ssm.Init.LIN, channels=2, param_dtype=F64, rngs=nnx.Rngs(0))
    assert conv.C.shape == (2, 3, 4, 2) and conv.D.shape == (2, 3)
    u = _x((2, 16, 3))
    y = nnx.jit(lambda m, u: m(u))(conv, u)
    assert y.shape == (2, 16, 6)
    k = conv.kernel(16)
    for b in range(2):
        want = jnp.concatenate([ssm.fft_conv(u[b], k[j], conv.D[j]) for j in range(2)], axis=-1)
        np.testing.assert_allclose(y[b], want, **TOL)

    @nnx.jit
    def steps(m, u):
        def body(s, u_k):
            y_k, s = m.step(s, u_k)
            return s, y_k

        return jnp.swapaxes(jax.lax.scan(body, m.init_state(u.shape[0]), jnp.swapaxes(u, 0, 1))[1], 0, 1)

    np.testing.assert_allclose(steps(conv, u), y, rtol=1e-9, atol=1e-9)


def test_two_channels_bidirectional():
    """channels = 2, bidirectional: C has 4 = 2·2 kernel channels, direction-major (official '(s c) h l')."""
    conv = S4DConv(3, 4, init=ssm.Init.LIN, channels=2, bidirectional=True, param_dtype=F64, rngs=nnx.Rngs(0))
    assert conv.C.shape == (4, 3, 2, 2)
    u = _x((1, 10, 3))
    y = conv(u)
    k = conv.kernel(10)
    want = jnp.concatenate(
        [ssm.fft_conv(u[0], ssm.bidirectional_kernel(k[j], k[2 + j]), conv.D[j]) for j in range(2)], axis=-1)
    np.testing.assert_allclose(y[0], want, **TOL)


def test_layer_with_all_options_conv_equals_step_and_batch_chunks():
    """S4D (GLU output map from c·H features) with every option: convolution == recurrence == batch chunks."""
    kw = dict(init=ssm.Init.INV, channels=2, n_ssm=2, dt_transform=Transform.SOFTPLUS,
              real_transform=Transform.SOFTPLUS, discretization=ssm.Discretization.BILINEAR, param_dtype=F64)
    layer = S4D(4, 8, rngs=nnx.Rngs(0), **kw)
    chunked = S4D(4, 8, batch_chunks=2, rngs=nnx.Rngs(0), **kw)
    assert layer.output_linear.kernel.shape == (8, 8)
    u = _x((2, 12, 4))
    y = nnx.jit(lambda m, u: m(u))(layer, u)
    assert y.shape == (2, 12, 4)
    np.testing.assert_allclose(nnx.jit(lambda m, u: m(u))(chunked, u), y, **TOL)
    state, ys = layer.init_state(2), []
    for t in range(12):
        y_t, state = layer.step(state, u[:, t])
        ys.append(y_t)
    np.testing.assert_allclose(jnp.stack(ys, 1), y, rtol=1e-9, atol=1e-9)


def test_bad_options():
    with pytest.raises(TypeError, match="dt_transform"):
        S4DConv(4, 8, init=ssm.Init.LIN, dt_transform="softplus", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="real_transform"):
        S4DConv(4, 8, init=ssm.Init.LIN, real_transform=None, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channels"):
        S4DConv(4, 8, init=ssm.Init.LIN, channels=0, rngs=nnx.Rngs(0))
