"""eigenkit.ssm kernels, convolution and recurrence vs float64 NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _s4d_reference import causal_conv_ref, kernel_power_sum, kernel_ref, recurrence_ref
from jax.test_util import check_grads

from eigenkit import ssm
from eigenkit.ssm._phase import phase as _phase

ZOH, BIL = ssm.Discretization.ZOH, ssm.Discretization.BILINEAR
CHUNKED, NAIVE = ssm.KernelMethod.CHUNKED, ssm.KernelMethod.NAIVE
_kernel = jax.jit(ssm.ssm_kernel, static_argnames=("length", "discretization", "method", "chunk"))


def _params(init, n, h, dtype, seed=0, c=None):
    A, B = ssm.diag_init(init, n, dtype=dtype)
    k1, k2 = jax.random.split(jax.random.key(seed))
    C = ssm.init_C((h, n // 2) if c is None else (c, h, n // 2), key=k1, dtype=dtype)
    dt = jnp.exp(ssm.init_log_dt((h,), key=k2, dtype=dtype))
    return A, B, C, dt


def _rel(a, ref):
    """Error relative to each channel's kernel scale (magnitude-scaled tolerance)."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(a - ref) / np.max(np.abs(ref), axis=-1, keepdims=True)))


@pytest.mark.parametrize(
    "init,method", [(i, CHUNKED) for i in ssm.Init] + [(ssm.Init.INV, NAIVE)], ids=lambda v: getattr(v, "name", v)
)
@pytest.mark.parametrize("disc", [ZOH, BIL])
def test_kernel_vs_float64_and_power_sum(init, disc, method, dtype):
    A, B, C, dt = _params(init, 16, 3, dtype)
    L = 100
    k = _kernel(A, B, C, dt, length=L, discretization=disc, method=method)
    assert k.shape == (3, L) and k.dtype == dtype
    ref = kernel_ref(A, B, C, dt, L, bilinear=disc is BIL)
    ref2 = kernel_power_sum(A, B, C, dt, L, bilinear=disc is BIL)
    assert _rel(ref2, ref) < 1e-12  # Vandermonde == Σ C Ā^l B̄ (float64)
    assert _rel(k, ref) < (3e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("init", [ssm.Init.LIN, ssm.Init.INV, ssm.Init.LEGS])
@pytest.mark.parametrize("disc", [ZOH, BIL])
def test_kernel_float32_long_L(init, disc):
    """L = 4096, dt in [1e-3, 1e-1]: float32 vs float64, error relative to each kernel's max.

    Documented tolerances: ZOH chunked 2e-6 (exact phase reduction); bilinear 5e-5 (phase of log Ā rounded once).
    """
    h, L = 6, 4096
    A, B, C, _ = _params(init, 64, h, np.float32)
    dt = jnp.exp(jnp.linspace(np.log(1e-3), np.log(1e-1), h, dtype=jnp.float32))
    k = _kernel(A, B, C, dt, length=L, discretization=disc)
    ref = kernel_ref(A, B, C, dt, L, bilinear=disc is BIL)
    assert _rel(k, ref) < (2e-6 if disc is ZOH else 5e-5)
    if disc is ZOH and init is not ssm.Init.LIN:  # the naive float32 phases are measurably worse here
        kn = _kernel(A, B, C, dt, length=L, method=NAIVE)
        assert _rel(kn, ref) > 3 * _rel(k, ref)


def test_phase_reduction_accuracy():
    rng = np.random.default_rng(0)
    u = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), 64)).astype(np.float32)
    v = rng.uniform(0, 1300, 64).astype(np.float32)
    th = np.asarray(_phase(jnp.asarray(u), jnp.asarray(v), 4096, 1), np.float64)
    ref = (u.astype(np.float64) * v)[:, None] * np.arange(4096)
    assert np.all(np.abs(th) <= np.pi + 1e-6)
    assert np.max(np.abs(np.angle(np.exp(1j * (th - ref))))) < 2e-5
    th64 = _phase(jnp.asarray(u, jnp.float64), jnp.asarray(v, jnp.float64), 8, 3)
    np.testing.assert_allclose(np.asarray(th64), ref[:, :22:3], rtol=1e-13)


@pytest.mark.parametrize("chunk", [1, 7, 64, 200])
def test_chunk_sizes_agree(chunk):
    A, B, C, dt = _params(ssm.Init.INV, 8, 2, np.float64)
    ref = _kernel(A, B, C, dt, length=150, method=NAIVE)
    np.testing.assert_allclose(_kernel(A, B, C, dt, length=150, chunk=chunk), ref, rtol=1e-10, atol=1e-12)


def test_channels_and_shared_A_and_no_B(dtype):
    A, B, C, dt = _params(ssm.Init.LIN, 8, 3, dtype, c=2)
    k = _kernel(A, B, C, dt, length=20)  # A (N/2,) shared over H; C (c, H, N/2)
    assert k.shape == (2, 3, 20)
    k0 = _kernel(jnp.broadcast_to(A, (3, 4)), None, C[0], dt, length=20)  # B = 1 folded into C
    np.testing.assert_allclose(k[0], k0, rtol=1e-5, atol=1e-6)


def test_vandermonde_matches_definition(dtype):
    rng = np.random.default_rng(1)
    cdt = np.complex64 if dtype == np.float32 else np.complex128
    w = (rng.normal(size=(2, 3, 5)) + 1j * rng.normal(size=(2, 3, 5))).astype(cdt)
    x = (-rng.uniform(0.01, 0.2, (3, 5)) + 1j * rng.uniform(0, 3, (3, 5))).astype(cdt)
    vand = np.exp(x.astype(np.complex128)[..., None] * np.arange(30))
    want = 2 * np.einsum("chn,hnl->chl", w.astype(np.complex128), vand).real
    vm = jax.jit(ssm.vandermonde, static_argnames=("length", "method", "chunk"))
    for m in (CHUNKED, NAIVE):
        got = vm(jnp.asarray(w), jnp.asarray(x), length=30, method=m)
        assert _rel(got, want) < (1e-5 if dtype == np.float32 else 1e-12)


def test_kernel_vmap_matches_loop():
    A, B, _, _ = _params(ssm.Init.LIN, 8, 2, np.float64)
    Cs = ssm.init_C((3, 2, 4), key=jax.random.key(5), dtype=np.float64)
    dts = jnp.exp(ssm.init_log_dt((3, 2), key=jax.random.key(6), dtype=np.float64))
    f = jax.jit(jax.vmap(lambda C, dt: ssm.ssm_kernel(A, B, C, dt, 17)))
    got = f(Cs, dts)
    for i in range(3):
        np.testing.assert_allclose(got[i], _kernel(A, B, Cs[i], dts[i], length=17), rtol=1e-12)


@pytest.mark.parametrize("disc,method", [(ZOH, CHUNKED), (BIL, CHUNKED), (ZOH, NAIVE)], ids=["zoh", "bil", "naive"])
def test_kernel_grads(disc, method):
    """check_grads (float64) through the real parameterisation (log dt, log(-Re A), Im A, C, B)."""
    A0, B0, C0, dt0 = _params(ssm.Init.INV, 8, 2, np.float64)

    def f(log_dt, log_a_re, a_im, c_re, c_im, b_re):
        A = jax.lax.complex(-jnp.exp(log_a_re), a_im)
        C = jax.lax.complex(c_re, c_im)
        B = jax.lax.complex(b_re, jnp.zeros_like(b_re))
        k = ssm.ssm_kernel(A, B, C, jnp.exp(log_dt), 23, discretization=disc, method=method, chunk=4)
        return jnp.sum(jnp.sin(k))

    args = (jnp.log(dt0), jnp.log(-A0.real), A0.imag, C0.real, C0.imag, B0.real)
    check_grads(jax.jit(f), args, order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_chunked_grad_equals_naive_grad_float32():
    A, B, C, dt = _params(ssm.Init.LIN, 16, 4, np.float32)
    L = 512

    def loss(c, method):
        return jnp.sum(ssm.ssm_kernel(A, B, c, dt, L, method=method) ** 2)

    g1 = jax.jit(jax.grad(loss), static_argnums=1)(C, CHUNKED)
    g2 = jax.jit(jax.grad(loss), static_argnums=1)(C, NAIVE)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(g2))))


@pytest.mark.parametrize("disc", [ZOH, BIL])
def test_fft_conv_equals_recurrence(disc, dtype):
    """Convolution mode (Vandermonde kernel + FFT conv + D) == recurrent mode (lax.scan), L = 256."""
    h, L = 3, 256
    A, B, C, dt = _params(ssm.Init.LEGS, 16, h, dtype, seed=2)
    D = jnp.asarray(np.random.default_rng(0).normal(size=h), dtype)
    u = jnp.asarray(np.random.default_rng(1).normal(size=(L, h)), dtype)
    k = _kernel(A, B, C, dt, length=L, discretization=disc)
    y_conv = jax.jit(ssm.fft_conv)(u, k, D)
    ab, bb = jax.jit(ssm.discretize, static_argnums=3)(A, B, dt, disc)
    y_rec, state = jax.jit(ssm.recurrence)(ab, bb, C, D, u)
    ref = recurrence_ref(ab, bb, C, D, u)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(np.asarray(y_rec) - ref)) < tol * scale
    assert np.max(np.abs(np.asarray(y_conv) - ref)) < tol * scale
    assert state.shape == (h, 8) and y_conv.dtype == dtype


def test_recurrence_state_carries_over():
    dtype = np.float64
    A, B, C, dt = _params(ssm.Init.LIN, 8, 2, dtype)
    ab, bb = ssm.discretize(A, B, dt)
    u = jnp.asarray(np.random.default_rng(0).normal(size=(20, 2)), dtype)
    rec = jax.jit(ssm.recurrence)
    y, s = rec(ab, bb, C, None, u)
    y1, s1 = rec(ab, bb, C, None, u[:7])
    y2, s2 = rec(ab, bb, C, None, u[7:], s1)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s2, s, rtol=1e-5, atol=1e-6)
    yk, sk = jax.jit(ssm.step)(ab, bb, C, None, s1, u[7])
    np.testing.assert_allclose(yk, y[7], rtol=1e-5, atol=1e-6)


def test_discretize_closed_forms():
    A = jnp.array([[-0.5 + 2j, -1.0 + 0j]], jnp.complex128)
    B = jnp.array([[1.0 + 1j, 2.0 + 0j]], jnp.complex128)
    dt = jnp.array([0.1])
    disc = jax.jit(ssm.discretize, static_argnums=3)
    a, b = disc(A, B, dt, ZOH)
    np.testing.assert_allclose(a, np.exp(0.1 * A), rtol=1e-14)
    np.testing.assert_allclose(b, B * (np.exp(0.1 * A) - 1) / A, rtol=1e-12)
    a, b = disc(A, B, dt, BIL)
    np.testing.assert_allclose(a, (1 + 0.05 * A) / (1 - 0.05 * A), rtol=1e-14)
    np.testing.assert_allclose(b, B * 0.1 / (1 - 0.05 * A), rtol=1e-14)
    # ZOH B̄ keeps full relative precision at tiny dt (expm1, no cancellation)
    a, b = disc(A.astype(jnp.complex64), B.astype(jnp.complex64), jnp.array([1e-6], jnp.float32), ZOH)
    np.testing.assert_allclose(np.asarray(b), np.asarray(B) * 1e-6, rtol=1e-5)


def test_fft_conv_equals_direct_causal_conv(dtype, tol):
    rng = np.random.default_rng(3)
    u = rng.normal(size=(33, 4)).astype(dtype)
    k = rng.normal(size=(4, 33)).astype(dtype)
    d = rng.normal(size=4).astype(dtype)
    got = jax.jit(ssm.fft_conv)(jnp.asarray(u), jnp.asarray(k), jnp.asarray(d))
    np.testing.assert_allclose(got, causal_conv_ref(u, k, d), rtol=tol[0] * 10, atol=tol[1] * 10)
    # vmap over a batch == loop
    ub = rng.normal(size=(3, 33, 4)).astype(dtype)
    gb = jax.jit(jax.vmap(ssm.fft_conv, in_axes=(0, None, None)))(jnp.asarray(ub), jnp.asarray(k), jnp.asarray(d))
    for i in range(3):
        want_i = jax.jit(ssm.fft_conv)(jnp.asarray(ub[i]), jnp.asarray(k), jnp.asarray(d))
        np.testing.assert_allclose(gb[i], want_i, rtol=1e-5)


def test_bidirectional_off_by_one():
    """Backward branch starts at lag -1 with k_bwd[0]; no lag-0 term; k_bwd[L-1] unused (official behaviour)."""
    rng = np.random.default_rng(4)
    L, h = 9, 2
    u = rng.normal(size=(L, h))
    kf, kb = rng.normal(size=(h, L)), rng.normal(size=(h, L))
    y = np.asarray(ssm.fft_conv(jnp.asarray(u), ssm.bidirectional_kernel(jnp.asarray(kf), jnp.asarray(kb))))
    want = causal_conv_ref(u, kf)
    for t in range(L):
        for s in range(t + 1, L):
            want[t] += kb[:, s - t - 1] * u[s]
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    kb2 = kb.copy()
    kb2[:, -1] += 100.0
    y2 = ssm.fft_conv(jnp.asarray(u), ssm.bidirectional_kernel(jnp.asarray(kf), jnp.asarray(kb2)))
    np.testing.assert_allclose(y2, y, rtol=1e-10, atol=1e-10)


def test_degenerate_inputs():
    A, B, C, dt = _params(ssm.Init.LIN, 2, 1, np.float64)
    k = _kernel(A, B, C, dt, length=1)  # L = 1, N = 2
    np.testing.assert_allclose(k, kernel_ref(A, B, C, dt, 1), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(ssm.fft_conv)(jnp.zeros((5, 1)), jnp.ones((1, 5))), 0.0)
    kz = _kernel(A, B, jnp.zeros_like(C), dt, length=8)  # C = 0 -> zero kernel
    np.testing.assert_array_equal(kz, 0.0)


def test_bad_inputs():
    A, B, C, dt = _params(ssm.Init.LIN, 8, 2, np.float32)
    with pytest.raises(ValueError, match=r"\(H, L\) = \(2, 10\)"):
        ssm.fft_conv(jnp.zeros((10, 2), jnp.float32), jnp.zeros((2, 7), jnp.float32))
    with pytest.raises(ValueError, match="rank 2"):
        ssm.fft_conv(jnp.zeros((10,), jnp.float32), jnp.zeros((2, 10), jnp.float32))
    with pytest.raises(TypeError, match="floating"):
        ssm.fft_conv(jnp.zeros((10, 2), jnp.int32), jnp.zeros((2, 10), jnp.float32))
    with pytest.raises(TypeError, match="same dtype"):
        ssm.fft_conv(jnp.zeros((10, 2), jnp.float64), jnp.zeros((2, 10), jnp.float32))
    with pytest.raises(ValueError, match="N/2"):
        ssm.ssm_kernel(A, B, C[:, :3], dt, 5)
    with pytest.raises(ValueError, match=r"dt must have shape \(H,\) = \(2,\)"):
        ssm.ssm_kernel(jnp.broadcast_to(A, (2, 4)), B, C, dt[:1], 5)
    with pytest.raises(TypeError, match="complex"):
        ssm.ssm_kernel(A.real, B, C, dt, 5)
    with pytest.raises(TypeError, match="precision"):
        ssm.ssm_kernel(A, B, C, dt.astype(jnp.float64), 5)
    with pytest.raises(TypeError, match="Discretization"):
        ssm.ssm_kernel(A, B, C, dt, 5, discretization="zoh")
    with pytest.raises(ValueError, match="length"):
        ssm.ssm_kernel(A, B, C, dt, 0)
    ab, bb = ssm.discretize(A, B, dt)
    with pytest.raises(ValueError, match=r"\(L, H\) with H = 2"):
        ssm.recurrence(ab, bb, C, None, jnp.zeros((5, 3), jnp.float32))


def test_conv_and_recurrence_grads():
    rng = np.random.default_rng(7)
    u = jnp.asarray(rng.normal(size=(9, 2)))
    k = jnp.asarray(rng.normal(size=(2, 9)))
    d = jnp.asarray(rng.normal(size=2))
    check_grads(jax.jit(lambda u, k, d: jnp.sum(jnp.sin(ssm.fft_conv(u, k, d)))), (u, k, d), order=1,
                modes=("rev",))
    A, B, C, dt = _params(ssm.Init.LIN, 4, 2, np.float64)

    def f(dt, c_re, u):
        ab, bb = ssm.discretize(A, B, dt)
        y, _ = ssm.recurrence(ab, bb, jax.lax.complex(c_re, C.imag), d, u)
        return jnp.sum(jnp.sin(y))

    check_grads(jax.jit(f), (dt, C.real, u), order=1, modes=("rev",))
