"""Grassmann geometry primitives vs float64 NumPy references, under jit / vmap / grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from eigenkit import manifolds as mf

D, K = 7, 3


def _basis(rng, shape, dtype=np.float64):
    q, r = np.linalg.qr(rng.standard_normal(shape))
    return (q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]).astype(dtype)


def _tangent(rng, p):
    g = rng.standard_normal(p.shape).astype(p.dtype)
    return (g - p @ (np.swapaxes(p, -1, -2) @ g)).astype(p.dtype)


def _np_exp_svd(p, g, t):
    u, s, vt = np.linalg.svd(g.astype(np.float64), full_matrices=False)
    return ((p.astype(np.float64) @ vt.T) * np.cos(t * s) + u * np.sin(t * s)) @ vt


def _np_angles(p, q):
    c = np.linalg.svd(p.astype(np.float64).T @ q.astype(np.float64), compute_uv=False)
    return np.sort(np.arccos(np.clip(c, -1, 1)))


def test_project_idempotent_orthogonal_and_reference(rng, dtype, tol):
    p = _basis(rng, (4, D, K), dtype)
    g = rng.standard_normal(p.shape).astype(dtype)
    h = rng.standard_normal(p.shape).astype(dtype)
    f = jax.jit(mf.grassmann_project)
    t = f(p, g)
    assert t.dtype == dtype
    p64 = p.astype(np.float64)
    ref = g - p64 @ (np.swapaxes(p64, -1, -2) @ g)
    np.testing.assert_allclose(t, ref, rtol=tol[0] * 10, atol=tol[1] * 10)
    np.testing.assert_allclose(f(p, t), t, rtol=tol[0] * 10, atol=tol[1] * 10)  # idempotent
    np.testing.assert_allclose(np.swapaxes(p, -1, -2) @ np.asarray(t), 0.0, atol=tol[1] * 10)  # tangent
    # self-adjoint: <proj g, h> = <g, proj h>
    lhs = np.sum(np.asarray(t, np.float64) * h)
    rhs = np.sum(g.astype(np.float64) * np.asarray(f(p, h), np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=tol[0] * 10)


def test_stiefel_equals_grassmann_for_span_only_loss(rng):
    p = _basis(rng, (D, K))
    a = rng.standard_normal((D, D))
    a = a + a.T

    def loss(x):  # tr(xᵀ A x) depends only on span(x) for orthonormal x, and xᵀ∇ is symmetric
        return jnp.trace(x.T @ a @ x)

    g = jax.grad(loss)(jnp.asarray(p))
    np.testing.assert_allclose(mf.stiefel_project(p, g), mf.grassmann_project(p, g), atol=1e-12)


@pytest.mark.parametrize("t", [0.0, 0.3, -1.7])
def test_exp_eigh_equals_svd_and_reference(rng, dtype, tol, t):
    p = _basis(rng, (5, D, K), dtype)
    g = _tangent(rng, p)
    ours = jax.jit(mf.grassmann_exp)(p, g, t)
    svd = jax.jit(mf.grassmann_exp_svd)(p, g, t)
    ref = np.stack([_np_exp_svd(p[i], g[i], t) for i in range(5)])
    assert ours.dtype == dtype
    atol = 50 * tol[1]
    np.testing.assert_allclose(ours, ref, atol=atol)
    np.testing.assert_allclose(svd, ref, atol=atol)
    eye = np.eye(K)
    np.testing.assert_allclose(np.swapaxes(ours, -1, -2) @ ours, np.broadcast_to(eye, (5, K, K)), atol=atol)


def test_exp_rank_deficient_and_zero(rng, dtype, tol):
    p = _basis(rng, (D, K), dtype)
    g = np.zeros((D, K), dtype)
    np.testing.assert_allclose(mf.grassmann_exp(p, g, 1.0), p, atol=tol[1])
    # rank-1 tangent: outer product of a normal vector with a coefficient row
    u = _tangent(rng, p)[:, :1]
    g1 = (u @ rng.standard_normal((1, K))).astype(dtype)
    ours = mf.grassmann_exp(p, g1, 0.5)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, _np_exp_svd(p, g1, 0.5), atol=50 * tol[1])


def test_exp_is_geodesic_distance_and_log_inverse(rng):
    p = _basis(rng, (D, K))
    g = _tangent(rng, p)
    g = g / np.linalg.norm(g) * 0.6  # keep all angles < π/2 so log is defined
    q = mf.grassmann_exp(p, g, 1.0)
    # distance along the geodesic = ‖σ‖ = ‖G‖_F
    np.testing.assert_allclose(mf.grassmann_dist(p, q), np.linalg.norm(g), rtol=1e-10)
    np.testing.assert_allclose(mf.grassmann_log(p, q), g, atol=1e-10)
    # log is basis invariant in q
    r = _basis(rng, (K, K))
    np.testing.assert_allclose(mf.grassmann_log(p, q @ r), g, atol=1e-10)


def test_principal_angles_reference_and_small_angles(rng, dtype, tol):
    p = _basis(rng, (D, K), dtype)
    q = _basis(rng, (D, 2), dtype)
    th = jax.jit(mf.principal_angles)(p, q)
    assert th.shape == (2,) and th.dtype == dtype
    np.testing.assert_allclose(th, _np_angles(p, q), atol=100 * tol[1])
    np.testing.assert_allclose(mf.principal_angles(q, p), th, atol=100 * tol[1])  # symmetric
    # tiny angle: arccos would lose it in float32, the sine branch keeps it
    g = _tangent(rng, p)
    g = g / np.linalg.norm(g) * 1e-4
    q2 = np.asarray(mf.grassmann_exp(p, g, 1.0))
    d = mf.grassmann_dist(p, q2)
    np.testing.assert_allclose(d, 1e-4, rtol=0.05 if dtype == np.float32 else 1e-8)
    np.testing.assert_allclose(mf.grassmann_dist(p, p @ _basis(rng, (K, K), dtype)), 0.0, atol=10 * tol[1] + 1e-6)


def test_retractions(rng, dtype, tol):
    p = _basis(rng, (3, D, K), dtype)
    g = _tangent(rng, p) * dtype(0.05)
    exp = np.asarray(mf.grassmann_exp(p, g, 1.0))
    for r in mf.Retraction:
        q = np.asarray(jax.jit(mf.grassmann_retract, static_argnums=3)(p, g, 1.0, r))
        np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(K), (3, K, K)), atol=20 * tol[1])
        # same subspace as the exponential map to second order: distance O(|g|^2)... compare projectors
        pq = q @ np.swapaxes(q, -1, -2)
        pe = exp @ np.swapaxes(exp, -1, -2)
        assert np.max(np.abs(pq - pe)) < 5e-3
    # sign-fixed QR leaves an orthonormal input unchanged; polar too
    for r in (mf.Retraction.QR_SIGNFIXED, mf.Retraction.POLAR):
        np.testing.assert_allclose(mf.qr_orthonormalize(p, r), p, atol=20 * tol[1])
    # plain QR spans the same space
    q = np.asarray(mf.qr_orthonormalize(p, mf.Retraction.QR))
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), p @ np.swapaxes(p, -1, -2), atol=20 * tol[1])


def test_vmap_matches_loop(rng):
    p = _basis(rng, (4, D, K))
    g = _tangent(rng, p)
    single = lambda a, b: mf.grassmann_exp(a, mf.grassmann_project(a, b), 0.7)  # noqa: E731
    batched = jax.vmap(single)(p, g)
    loop = np.stack([single(p[i], g[i]) for i in range(4)])
    np.testing.assert_allclose(batched, loop, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(mf.principal_angles)(p, p[::-1]),
                               np.stack([mf.principal_angles(p[i], p[3 - i]) for i in range(4)]), atol=1e-12)


def test_grads():
    rng = np.random.default_rng(3)
    p = jnp.asarray(_basis(rng, (D, K)))
    g = jnp.asarray(_tangent(rng, p))
    # jitted so the finite-difference evaluations don't dispatch op by op
    check_grads(jax.jit(lambda t: mf.grassmann_exp(p, g, t)), (0.4,), order=1, modes=["rev"])
    check_grads(jax.jit(lambda x: mf.grassmann_project(x, g)), (p,), order=1, modes=["rev"])
    check_grads(jax.jit(lambda x: mf.grassmann_exp(x, g, 0.4)), (p,), order=1, modes=["rev"])
    q = jnp.asarray(_basis(rng, (D, K)))
    check_grads(jax.jit(lambda x: mf.grassmann_dist(mf.qr_orthonormalize(x), q)), (p,), order=1, modes=["rev"])


def test_random_point(dtype):
    p = mf.grassmann_random_point((2, 5, 3), key=jax.random.key(0), dtype=dtype)
    assert p.shape == (2, 5, 3) and p.dtype == dtype
    mf.check_orthonormal(p)
    p2 = mf.grassmann_random_point((2, 5, 3), key=jax.random.key(0), dtype=dtype)
    np.testing.assert_array_equal(p, p2)
    with pytest.raises(ValueError, match="k <= D"):
        mf.grassmann_random_point((3, 5), key=jax.random.key(0))


def test_bad_inputs(rng):
    p = _basis(rng, (D, K))
    with pytest.raises(ValueError, match="k <= D"):
        mf.grassmann_project(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same \\(D, k\\)"):
        mf.grassmann_exp(p, np.zeros((D, K + 1)))
    with pytest.raises(TypeError, match="same dtype"):
        mf.grassmann_exp(p, np.zeros((D, K), np.float32))
    with pytest.raises(TypeError, match="floating"):
        mf.grassmann_project(np.zeros((D, K), np.int32), np.zeros((D, K), np.int32))
    with pytest.raises(ValueError, match="orthonormal columns"):
        mf.check_orthonormal(2.0 * p, "bases")
    with pytest.raises(ValueError, match="rank >= 2"):
        mf.check_orthonormal(np.zeros(3))
    with pytest.raises(TypeError, match="Retraction"):
        mf.qr_orthonormalize(p, "qr")
    assert mf.check_orthonormal(p) is not None


def test_project_exp_fused_equals_composition(rng, dtype, tol):
    p = _basis(rng, (4, D, K), dtype)
    d = rng.standard_normal(p.shape).astype(dtype)  # not tangent: big normal part, as GCR's momentum buffer
    fused = jax.jit(mf.grassmann_project_exp)(p, d, -0.3)
    comp = mf.grassmann_exp(p, mf.grassmann_project(p, d), -0.3)
    p64, d64 = p.astype(np.float64), d.astype(np.float64)
    ref = np.stack([_np_exp_svd(p64[i], d64[i] - p64[i] @ (p64[i].T @ d64[i]), -0.3) for i in range(4)])
    assert fused.dtype == dtype
    np.testing.assert_allclose(fused, ref, atol=100 * tol[1])
    np.testing.assert_allclose(comp, ref, atol=100 * tol[1])
    # a slightly drifted basis (PᵀP ≠ I): the exact orthogonal projection onto span(P)⊥ (with (PᵀP)⁻¹), the exp
    # formula, then one Newton–Schulz step Y(3I − YᵀY)/2 — same subspace, drift removed to second order
    pd = (p64 * (1 + 1e-3 * rng.standard_normal(p.shape))).astype(dtype)
    pd64 = pd.astype(np.float64)
    h = np.swapaxes(pd64, -1, -2) @ pd64
    g_exact = d64 - pd64 @ np.linalg.solve(h, np.swapaxes(pd64, -1, -2) @ d64)
    y = np.asarray(mf.grassmann_exp(jnp.asarray(pd64), jnp.asarray(g_exact), 0.2))
    y = y @ (1.5 * np.eye(K) - 0.5 * np.swapaxes(y, -1, -2) @ y)
    out = np.asarray(mf.grassmann_project_exp(pd, d, 0.2), np.float64)
    np.testing.assert_allclose(out, y, atol=1e3 * tol[1])
    drift_in = np.max(np.abs(h - np.eye(K)))
    drift_out = np.max(np.abs(np.swapaxes(out, -1, -2) @ out - np.eye(K)))
    assert drift_in > 1e-4 and drift_out < 2 * drift_in**2 + 1e-6 * (dtype == np.float32)  # second order


def test_principal_angles_agree_with_linalg(rng):
    from eigenkit.linalg import principal_angles as linalg_angles

    p = _basis(rng, (3, D, K))
    q = _basis(rng, (3, D, 2))
    ours = mf.principal_angles(p, q)  # batched, for orthonormal inputs
    ref = np.stack([linalg_angles(p[i], q[i]) for i in range(3)])  # one pair, QRs its inputs
    np.testing.assert_allclose(ours, ref, atol=1e-10)
