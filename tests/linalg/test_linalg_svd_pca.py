"""Truncated / randomized SVD, PCA, whitening, principal angles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.test_util import check_grads

from eigenkit import linalg as la
from eigenkit.linalg import PCAMethod


def low_rank_plus_noise(rng, m=60, n=40, r=5, noise=1e-3):
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (u * np.linspace(10, 2, r)) @ v.T + noise * rng.standard_normal((m, n))


def test_truncated_svd_vs_numpy(dtype, tol, rng):
    a = low_rank_plus_noise(rng)
    u, s, vh = jax.jit(lambda x: la.truncated_svd(x, 5))(jnp.asarray(a, dtype))
    assert u.dtype == dtype and u.shape == (60, 5) and vh.shape == (5, 40)
    uu, ss, vv = np.linalg.svd(a)
    np.testing.assert_allclose(s, ss[:5], rtol=10 * tol[0])
    recon = (np.asarray(u, float) * np.asarray(s, float)) @ np.asarray(vh, float)
    np.testing.assert_allclose(recon, (uu[:, :5] * ss[:5]) @ vv[:5], atol=1e-4 if dtype == np.float32 else 1e-10)
    vh_ = np.asarray(vh)
    assert np.all(vh_[np.arange(5), np.argmax(np.abs(vh_), axis=1)] > 0)


def test_truncated_svd_batched_and_grad(rng):
    a = np.stack([low_rank_plus_noise(rng, 8, 6, 3, 0.1) for _ in range(3)])
    s = jax.jit(jax.vmap(lambda x: la.truncated_svd(x, 2)[1]))(jnp.asarray(a))
    sb = la.truncated_svd(jnp.asarray(a), 2)[1]  # batch-polymorphic
    for i in range(3):
        np.testing.assert_allclose(s[i], np.linalg.svd(a[i], compute_uv=False)[:2], rtol=1e-10)
    np.testing.assert_allclose(sb, s, rtol=1e-12)
    sv_loss = jax.jit(lambda x: jnp.sum(la.truncated_svd(x, 2)[1]))
    check_grads(sv_loss, (jnp.asarray(a[0]),), 1, modes=["fwd", "rev"])


def test_randomized_svd_matches_truncated(dtype, rng):
    a = jnp.asarray(low_rank_plus_noise(rng), dtype)
    run = jax.jit(lambda x, key: la.randomized_svd(x, 5, key=key, oversample=5, n_iter=2))
    u, s, vh = run(a, jax.random.key(0))
    ut, st, vht = la.truncated_svd(a, 5)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(s, st, rtol=tol)
    np.testing.assert_allclose(np.asarray(u * s @ vh), np.asarray(ut * st @ vht), atol=10 * tol)
    np.testing.assert_allclose(np.abs(np.asarray(vh @ vht.T)), np.eye(5), atol=10 * tol)


@pytest.mark.slow
def test_randomized_svd_grad_and_vmap(rng):
    a = jnp.asarray(low_rank_plus_noise(rng))
    run = jax.jit(lambda x, key: la.randomized_svd(x, 5, key=key, oversample=5, n_iter=2))
    # gradient: with oversampling to full width the sketch is exact, so d(Σ top-k σ)/dM = U_k V_kᵀ
    small = low_rank_plus_noise(rng, 8, 6, 3, 0.1)
    g = jax.jit(jax.grad(lambda x: jnp.sum(la.randomized_svd(x, 2, key=jax.random.key(0), oversample=4)[1])))(
        jnp.asarray(small))
    uu, _, vv = np.linalg.svd(small)
    np.testing.assert_allclose(g, uu[:, :2] @ vv[:2], atol=1e-8)
    # vmap over keys == loop
    keys = jax.random.split(jax.random.key(1), 2)
    sb = jax.vmap(lambda key: run(a, key)[1])(keys)
    for i in range(2):
        np.testing.assert_allclose(sb[i], run(a, keys[i])[1], rtol=1e-5)


def test_randomized_svd_power_iterations_help(rng):
    u, _ = np.linalg.qr(rng.standard_normal((60, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    a = jnp.asarray((u * np.geomspace(1, 0.05, 40)) @ v.T)  # slowly decaying spectrum
    err = lambda q: float(jnp.linalg.norm(
        (lambda r: r[0] * r[1] @ r[2])(la.randomized_svd(a, 5, key=jax.random.key(0), oversample=2, n_iter=q)) - a))
    best = float(np.linalg.norm(a - (lambda r: r[0] * r[1] @ r[2])(la.truncated_svd(a, 5))))
    assert err(3) < err(0) and err(3) < 1.05 * best


@pytest.mark.parametrize("method", [PCAMethod.SVD, PCAMethod.GRAM, PCAMethod.COVARIANCE])
def test_pca_vs_numpy(method, dtype, rng):
    n, d = (12, 20) if method is not PCAMethod.COVARIANCE else (30, 6)
    x = rng.standard_normal((n, d)) @ np.diag(np.linspace(3, 0.5, d)) + 1.0
    st = la.pca_fit(jnp.asarray(x, dtype), 3, method=method)
    xc = x - x.mean(0)
    _, ss, vh = np.linalg.svd(xc, full_matrices=False)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(st.singular_values, ss[:3], rtol=tol)
    np.testing.assert_allclose(st.explained_variance, ss[:3] ** 2 / (n - 1), rtol=2 * tol)
    np.testing.assert_allclose(np.abs(st.components), np.abs(vh[:3]), atol=50 * tol)
    comps = np.asarray(st.components)
    assert np.all(comps[np.arange(3), np.argmax(np.abs(comps), axis=1)] > 0)
    np.testing.assert_allclose(st.total_variance, np.sum(xc**2) / (n - 1), rtol=tol)
    y = la.pca_transform(st, jnp.asarray(x, dtype), whiten=True)
    np.testing.assert_allclose(np.cov(np.asarray(y, float).T), np.eye(3), atol=100 * tol)
    back = la.pca_inverse_transform(st, y, whiten=True)
    proj_ref = x.mean(0) + xc @ vh[:3].T @ vh[:3]
    np.testing.assert_allclose(back, proj_ref, atol=200 * tol)


def test_pca_jit_vmap_grad(rng):
    xs = jnp.asarray(rng.standard_normal((2, 10, 4)))
    fit = jax.jit(jax.vmap(lambda x: la.pca_fit(x, 2, method=PCAMethod.SVD)))
    sts = fit(xs)
    for i in range(2):
        st = la.pca_fit(xs[i], 2, method=PCAMethod.SVD)
        np.testing.assert_allclose(sts.components[i], st.components, atol=1e-10)
    st = la.pca_fit(xs[0], 2)  # AUTO: n >= d -> COVARIANCE
    np.testing.assert_allclose(st.components, la.pca_fit(xs[0], 2, method=PCAMethod.COVARIANCE).components)
    np.testing.assert_allclose(st.components, sts.components[0], atol=1e-10)  # same sign convention as SVD
    tr_loss = jax.jit(lambda x: jnp.sum(la.pca_transform(st, x, whiten=True) ** 3))
    check_grads(tr_loss, (xs[1],), 1, modes=["fwd", "rev"])
    # reconstruction error is basis-invariant and differentiable through the fit (separated spectrum)
    loss = lambda x: jnp.sum((la.pca_inverse_transform(la.pca_fit(x, 2, method=PCAMethod.SVD),
                                                       la.pca_transform(la.pca_fit(x, 2, method=PCAMethod.SVD), x))
                              - x) ** 2)
    check_grads(jax.jit(loss), (xs[0],), 1, modes=["rev"])


def test_whitening_eigh_vs_cholesky(dtype, rng):
    x = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 4))
    c = np.cov(x.T)
    wz = la.whiten_eigh(jnp.asarray(c, dtype))
    wc = la.whiten_cholesky(jnp.asarray(c, dtype))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for w in (wz, wc):
        w = np.asarray(w, float)
        np.testing.assert_allclose(w @ c @ w.T, np.eye(4), atol=tol)  # whitened covariance = I
        np.testing.assert_allclose(w.T @ w, np.linalg.inv(c), rtol=tol * 10, atol=tol)  # same Mahalanobis norms
    np.testing.assert_allclose(wz, np.real(scipy.linalg.inv(scipy.linalg.sqrtm(c))), rtol=10 * tol, atol=tol)
    q = np.asarray(wc, float) @ np.linalg.inv(np.asarray(wz, float))  # the rotation between the two
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=10 * tol)
    np.testing.assert_allclose(np.triu(np.asarray(wc), 1), 0)
    if dtype == np.float64:
        for fn in (la.whiten_eigh, la.whiten_cholesky):
            w_loss = jax.jit(lambda m, fn=fn: jnp.sum(fn(m @ m.T + jnp.eye(4)) ** 2))
            check_grads(w_loss, (jnp.asarray(c),), 1, modes=["rev"])
        cb = jnp.stack([jnp.asarray(c), jnp.eye(4) * 2.0])
        np.testing.assert_allclose(jax.vmap(la.whiten_cholesky)(cb)[1], np.eye(4) / np.sqrt(2), atol=1e-12)
        np.testing.assert_allclose(jax.jit(la.whiten_eigh)(cb)[1], np.eye(4) / np.sqrt(2), atol=1e-12)


def test_principal_angles(dtype, rng):
    n = 8
    a = rng.standard_normal((n, 3))
    b = np.concatenate([a[:, :1] + 1e-5 * rng.standard_normal((n, 1)), rng.standard_normal((n, 1))], axis=1)
    th = jax.jit(la.principal_angles)(jnp.asarray(a, dtype), jnp.asarray(b, dtype))
    ref = scipy.linalg.subspace_angles(a, b)[::-1]  # scipy: descending
    np.testing.assert_allclose(th, ref, atol=1e-4 if dtype == np.float32 else 1e-9)  # scipy and we differ ~1e-10
    assert th.shape == (2,) and float(th[0]) < 1e-3
    # symmetric in its arguments, invariant to change of basis
    np.testing.assert_allclose(la.principal_angles(jnp.asarray(b), jnp.asarray(a @ rng.standard_normal((3, 3)))),
                               ref, atol=1e-8)
    e = jnp.eye(4)
    np.testing.assert_allclose(la.principal_angles(e[:, :2], e[:, 2:]), [np.pi / 2] * 2, atol=1e-12)
    bs = jnp.asarray(np.stack([b, b[:, ::-1]]))
    np.testing.assert_allclose(jax.vmap(la.principal_angles, (None, 0))(jnp.asarray(a), bs)[1], ref, atol=1e-8)
    if dtype == np.float32:
        return
    c = jnp.asarray(rng.standard_normal((n, 2)))
    pa_loss = jax.jit(lambda x: jnp.sum(la.principal_angles(jnp.asarray(a), x) ** 2))
    check_grads(pa_loss, (c,), 1, modes=["fwd", "rev"])


def test_svd_pca_bad_inputs():
    with pytest.raises(ValueError, match="k <= min\\(M, N\\)"):
        la.truncated_svd(jnp.ones((3, 4)), 4)
    with pytest.raises(ValueError, match="rank 2"):
        la.randomized_svd(jnp.ones((2, 3, 4)), 1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="floating"):
        la.truncated_svd(jnp.ones((3, 4), jnp.int32), 1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        la.pca_fit(jnp.ones((1, 4)), 1)
    with pytest.raises(TypeError, match="PCAMethod"):
        la.pca_fit(jnp.ones((5, 4)), 1, method="svd")
    st = la.pca_fit(jnp.asarray(rng_data := np.random.default_rng(0).standard_normal((5, 4))), 2)
    assert rng_data.shape == (5, 4)
    with pytest.raises(ValueError, match="shape"):
        la.pca_transform(st, jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="square"):
        la.whiten_cholesky(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="shape"):
        la.principal_angles(jnp.ones((4, 2)), jnp.ones((5, 2)))
    # documented: NaN propagates, non-SPD Cholesky gives NaN
    assert np.all(np.isnan(la.whiten_cholesky(-jnp.eye(2))))
    assert np.all(np.isnan(la.truncated_svd(jnp.full((3, 3), jnp.nan), 1)[1]))
