"""eigh with safe gradients, eigenprojectors, spectral functions, top-k, matrix square roots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.test_util import check_grads

from eigenkit import linalg as la
from eigenkit.linalg import EighGrad, Which

N = 5


def sym_with_eigs(rng, eigs):
    q, _ = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))
    return (q * np.asarray(eigs, float)) @ q.T


def cycle_laplacian(n):
    a = np.zeros((n, n))
    for i in range(n):
        a[i, (i + 1) % n] = a[(i + 1) % n, i] = 1
    return np.diag(a.sum(1)) - a


def complete_laplacian(n):
    return n * np.eye(n) - np.ones((n, n))


DEGENERATE = {
    "identity": np.eye(N),
    "zero": np.zeros((N, N)),
    "cycle": cycle_laplacian(N),  # eigenvalues 0, (1.38)x2, (3.62)x2
    "complete": complete_laplacian(N),  # 0, 5 x4
    "rank_deficient": np.outer(np.arange(1.0, N + 1), np.arange(1.0, N + 1)),
}


def np_projector(a, d, which):
    _, v = np.linalg.eigh(a)
    vb = v[:, -d:] if which is Which.LARGEST else v[:, :d]
    return vb @ vb.T


@pytest.mark.parametrize("rule", list(EighGrad))
def test_eigh_values_vs_numpy(rule, dtype, tol, rng):
    a = sym_with_eigs(rng, [-2.0, -0.5, 0.3, 1.0, 4.0])
    w, v = jax.jit(lambda x: la.eigh(x, grad_rule=rule))(jnp.asarray(a, dtype))
    assert w.dtype == dtype and v.dtype == dtype
    rtol, atol = tol
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a), rtol=rtol, atol=10 * atol)
    np.testing.assert_allclose((np.asarray(v) * np.asarray(w)) @ np.asarray(v).T, a, atol=50 * atol + rtol)


def test_eigh_gradients_equal_exact_on_separated_spectrum(rng):
    a = jnp.asarray(sym_with_eigs(rng, [-2.0, -0.5, 0.3, 1.0, 4.0]))
    c = jnp.asarray(rng.standard_normal((N, N)))

    def loss(x, rule):
        w, v = la.eigh(x, grad_rule=rule)
        return jnp.sum(c * v**2) + jnp.sum(w * c[0])  # sign-invariant

    g_exact = jax.grad(loss)(a, EighGrad.EXACT)
    for rule in (EighGrad.BROADENED, EighGrad.MASKED):
        np.testing.assert_allclose(jax.grad(loss)(a, rule), g_exact, rtol=1e-7, atol=1e-9)
        check_grads(jax.jit(lambda x: loss(x, rule)), (a,), order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize("name", list(DEGENERATE))
@pytest.mark.parametrize("rule", [EighGrad.BROADENED, EighGrad.MASKED])
def test_eigh_gradient_finite_on_degenerate(name, rule, dtype, rng):
    a = jnp.asarray(DEGENERATE[name], dtype)
    c = jnp.asarray(rng.standard_normal((N, N)), dtype)
    g = jax.grad(lambda x: jnp.sum(c * la.eigh(x, grad_rule=rule)[1] ** 2))(a)
    assert g.dtype == dtype
    assert np.all(np.isfinite(g))
    # eigenvalue gradients are exact under every rule: d(sum λ)/dA = I
    gw = jax.grad(lambda x: jnp.sum(la.eigh(x, grad_rule=rule)[0]))(a)
    np.testing.assert_allclose(gw, np.eye(N), atol=1e-5)


def test_eigh_broadened_is_bounded_and_masked_zeroes_pairs():
    a = jnp.diag(jnp.array([1.0, 1.0 + 1e-12, 3.0]))
    dv = lambda rule: jax.jvp(lambda x: la.eigh(x, grad_rule=rule)[1], (a,), (jnp.ones((3, 3)),))[1]
    db, dm = dv(EighGrad.BROADENED), dv(EighGrad.MASKED)
    assert np.all(np.isfinite(db)) and np.max(np.abs(db)) < 1 / (2 * 1.5e-8 * 3.0) + 1
    assert np.all(np.isfinite(dm)) and np.max(np.abs(dm)) < 1.0  # only the 1/2-gap terms survive


def test_eigh_vmap_matches_loop(rng):
    a = np.stack([sym_with_eigs(rng, rng.standard_normal(N) * 3) for _ in range(3)])
    w, v = jax.jit(jax.vmap(la.eigh))(jnp.asarray(a))
    for i in range(3):
        wi, vi = la.eigh(jnp.asarray(a[i]))
        np.testing.assert_allclose(w[i], wi, atol=1e-12)
        np.testing.assert_allclose(np.abs(v[i]), np.abs(vi), atol=1e-10)
    # batch-polymorphic call == vmap
    wb, _ = la.eigh(jnp.asarray(a))
    np.testing.assert_allclose(wb, w, atol=1e-12)


def test_eigh_symmetrises_and_complex(rng):
    b = jnp.asarray(rng.standard_normal((N, N)))
    w, _ = la.eigh(b)
    np.testing.assert_allclose(w, np.linalg.eigvalsh((np.asarray(b) + np.asarray(b).T) / 2), atol=1e-12)
    h = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    h = h + h.conj().T
    wc, vc = la.eigh(jnp.asarray(h))
    np.testing.assert_allclose(wc, np.linalg.eigvalsh(h), atol=1e-12)
    assert wc.dtype == jnp.float64 and vc.dtype == jnp.complex128


def test_eigh_nan_propagates():
    w, _ = la.eigh(jnp.full((3, 3), jnp.nan))
    assert np.all(np.isnan(w))


@pytest.mark.parametrize("which", list(Which))
def test_projector_values_vmap_and_basis_invariance(which, dtype, tol, rng):
    d = 2 if which is Which.LARGEST else 3  # block boundaries in spectral gaps
    a = np.stack([sym_with_eigs(rng, [1.0, 1.0, 1.0, 5.0, 5.0]), cycle_laplacian(N)])
    p = jax.jit(jax.vmap(lambda x: la.eigh_projector(x, d, which=which)))(jnp.asarray(a, dtype))
    assert p.dtype == dtype
    for i in range(2):
        np.testing.assert_allclose(p[i], np_projector(a[i], d, which), atol=200 * tol[1] + tol[0])
        np.testing.assert_allclose(p[i], la.eigh_projector(jnp.asarray(a[i], dtype), d, which=which), atol=1e-5)
        np.testing.assert_allclose(p[i] @ p[i], p[i], atol=1e-5)
    np.testing.assert_allclose(np.trace(p, axis1=1, axis2=2), d, rtol=1e-5)


def analytic_projector_jvp(a, da, d):
    lam, v = np.linalg.eigh(a)
    n = len(lam)
    out = np.zeros_like(a)
    for i in range(n - d, n):
        for j in range(n - d):
            coef = v[:, i] @ da @ v[:, j] / (lam[i] - lam[j])
            out += coef * (np.outer(v[:, i], v[:, j]) + np.outer(v[:, j], v[:, i]))
    return out


def test_projector_jvp_matches_cross_block_formula_and_fd_with_repeats(dtype, rng):
    a = sym_with_eigs(rng, [1.0, 1.0, 1.0, 4.0, 4.0])  # repeated eigenvalues inside both blocks
    da = rng.standard_normal((N, N))
    da = da + da.T
    ref = analytic_projector_jvp(a, da, 2)
    h = 1e-6
    fd = (np_projector(a + h * da, 2, Which.LARGEST) - np_projector(a - h * da, 2, Which.LARGEST)) / (2 * h)
    np.testing.assert_allclose(ref, fd, atol=1e-7)
    f = lambda x: la.eigh_projector(x, 2)
    _, dp = jax.jvp(f, (jnp.asarray(a, dtype),), (jnp.asarray(da, dtype),))
    assert np.all(np.isfinite(dp))
    np.testing.assert_allclose(dp, ref, atol=2e-4 if dtype == np.float32 else 1e-10)
    # reverse mode == forward mode (transposition), and check_grads in float64
    t = jnp.asarray(rng.standard_normal((N, N)))
    loss = lambda x: jnp.sum((la.eigh_projector(x, 2) - t) ** 2)
    if dtype == np.float64:
        check_grads(jax.jit(loss), (jnp.asarray(a),), order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize("name", ["identity", "cycle", "complete", "zero"])
def test_projector_gradient_finite_when_boundary_degenerate_with_rule(name, rng):
    a = jnp.asarray(DEGENERATE[name])
    t = jnp.asarray(rng.standard_normal((N, N)))
    for rule in (EighGrad.BROADENED, EighGrad.MASKED):
        g = jax.grad(lambda x: jnp.sum(la.eigh_projector(x, 2, grad_rule=rule) * t))(a)
        assert np.all(np.isfinite(g))


def test_projector_exact_rule_finite_when_boundary_in_gap():
    # complete graph K_5: 0, 5, 5, 5, 5 -> bottom-1 block boundary sits in the gap
    a = jnp.asarray(complete_laplacian(N))
    g = jax.grad(lambda x: jnp.sum(la.eigh_projector(x, 1, which=Which.SMALLEST) ** 3))(a)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_spectral_function_jvp_equals_expm_frechet(name, rng):
    a = DEGENERATE[name] / 2.0
    e = rng.standard_normal((N, N))
    e = e + e.T
    val, dval = jax.jvp(lambda x: la.spectral_function(x, jnp.exp), (jnp.asarray(a),), (jnp.asarray(e),))
    ref_val, ref_d = scipy.linalg.expm_frechet(a, e)
    np.testing.assert_allclose(val, ref_val, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dval, ref_d, rtol=1e-6, atol=1e-7)


def test_spectral_function_f32_grad_and_vmap(rng):
    a = np.stack([DEGENERATE["cycle"], sym_with_eigs(rng, [0.5, 0.5, 1.0, 2.0, 2.0])]) / 2
    f = jax.jit(jax.vmap(lambda x: la.spectral_function(x, jnp.tanh)))
    out = f(jnp.asarray(a, jnp.float32))
    assert out.dtype == jnp.float32
    for i in range(2):
        lam, v = np.linalg.eigh(a[i])
        np.testing.assert_allclose(out[i], (v * np.tanh(lam)) @ v.T, atol=2e-5)
    loss = lambda x: jnp.sum(la.spectral_function(x, jnp.tanh) ** 2)
    check_grads(jax.jit(loss), (jnp.asarray(a[1]),), order=1, modes=["fwd", "rev"])
    g32 = jax.grad(loss)(jnp.asarray(a[1], jnp.float32))
    np.testing.assert_allclose(g32, jax.grad(loss)(jnp.asarray(a[1])), atol=1e-4)


@pytest.mark.parametrize("which", list(Which))
def test_topk_eigh(which, dtype, tol, rng):
    a = sym_with_eigs(rng, [-3.0, -1.0, 0.5, 2.0, 6.0])
    w, v = la.topk_eigh(jnp.asarray(a, dtype), 2, which=which)
    ref = np.linalg.eigvalsh(a)
    ref = ref[::-1][:2] if which is Which.LARGEST else ref[:2]
    np.testing.assert_allclose(w, ref, rtol=tol[0], atol=10 * tol[1])
    np.testing.assert_allclose(np.asarray(a) @ np.asarray(v, float), np.asarray(v, float) * ref, atol=1e-4)
    g = jax.grad(lambda x: jnp.sum(la.topk_eigh(x, 2, which=which)[0]))(jnp.asarray(a))
    np.testing.assert_allclose(g, np_projector(a, 2, which), atol=1e-10)
    if dtype == np.float64:
        batch = jnp.asarray(np.stack([a, DEGENERATE["cycle"]]))
        wb = jax.jit(jax.vmap(lambda x: la.topk_eigh(x, 2, which=which)[0]))(batch)
        for i in range(2):
            np.testing.assert_allclose(wb[i], la.topk_eigh(batch[i], 2, which=which)[0], atol=1e-12)


def test_sym_sqrt_and_inv_sqrt(dtype, rng):
    a = sym_with_eigs(rng, [0.5, 1.0, 1.0, 2.0, 3.0])
    s = la.sym_sqrt(jnp.asarray(a, dtype))
    r = la.sym_inv_sqrt(jnp.asarray(a, dtype))
    at = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(s, np.real(scipy.linalg.sqrtm(a)), atol=at)
    np.testing.assert_allclose(r, np.linalg.inv(np.real(scipy.linalg.sqrtm(a))), atol=at * 5)
    if dtype == np.float64:
        sq_loss = jax.jit(lambda x: jnp.sum(la.sym_sqrt(x) ** 2 * jnp.arange(N, dtype=x.dtype)))
        check_grads(sq_loss, (jnp.asarray(a),), 1, modes=["rev"])
        # sqrt(I) with repeated eigenvalues: derivative = dA / 2
        _, ds = jax.jvp(la.sym_sqrt, (jnp.eye(N),), (jnp.asarray(a),))
        np.testing.assert_allclose(ds, a / 2, atol=1e-10)
    batch = jnp.asarray(np.stack([a, 2 * np.eye(N)]), dtype)
    rb = jax.jit(jax.vmap(la.sym_inv_sqrt))(batch)
    np.testing.assert_allclose(rb[0], r, atol=at * 5)
    np.testing.assert_allclose(rb[1], np.eye(N) / np.sqrt(2), atol=at)
    # singular input: inverse square root stays finite with the default floor
    assert np.all(np.isfinite(la.sym_inv_sqrt(jnp.asarray(DEGENERATE["rank_deficient"], dtype))))


def test_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        la.eigh(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="rank >= 2"):
        la.eigh(jnp.ones(3))
    with pytest.raises(TypeError, match="EighGrad"):
        la.eigh(jnp.eye(3), grad_rule="broadened")
    with pytest.raises(ValueError, match="d <= n"):
        la.eigh_projector(jnp.eye(3), 4)
    with pytest.raises(TypeError, match="floating"):
        la.eigh_projector(jnp.eye(3, dtype=jnp.complex64), 1)
    with pytest.raises(TypeError, match="Which"):
        la.topk_eigh(jnp.eye(3), 1, which="largest")
    with pytest.raises(ValueError, match="k <= n"):
        la.topk_eigh(jnp.eye(3), 5)
    with pytest.raises(TypeError, match="inexact"):
        la.eigh(jnp.eye(3, dtype=jnp.int32))
    with pytest.raises(TypeError, match="callable"):
        la.spectral_function(jnp.eye(3), 2.0)
