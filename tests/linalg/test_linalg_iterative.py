"""Matrix-free spectra: subspace iteration, LOBPCG, matrix-free SVD and Jacobian top-k SVD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import linalg as la
from eigenkit.linalg import Which


def proj(v):
    v = np.asarray(v, float)
    return v @ np.linalg.pinv(v)


def test_subspace_iteration_vs_numpy(dtype, rng):
    n, k = 24, 3
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([[10.0, -8.0, 6.0], rng.uniform(-1, 1, n - 3)])
    a = (q * lam) @ q.T
    am = jnp.asarray(a, dtype)
    fn = jax.jit(lambda key: la.subspace_iteration(lambda x: am @ x, n, k, key=key, dtype=dtype, oversample=2))
    w, v, info = fn(jax.random.key(0))
    assert w.dtype == dtype and v.shape == (n, k)
    np.testing.assert_allclose(w, [10.0, -8.0, 6.0], rtol=1e-4 if dtype == np.float32 else 1e-7)
    np.testing.assert_allclose(proj(v), proj(q[:, :3]), atol=1e-3 if dtype == np.float32 else 1e-6)
    assert bool(info.converged) and 1 <= int(info.iterations) < 200


def test_subspace_iteration_vmap_matches_loop(rng):
    n = 12
    mats = [rng.standard_normal((n, n)) for _ in range(2)]
    mats = jnp.asarray(np.stack([m @ m.T for m in mats]))
    run = jax.jit(lambda m, key: la.subspace_iteration(lambda x: m @ x, n, 2, key=key, dtype=jnp.float64,
                                                      oversample=2)[0])
    keys = jax.random.split(jax.random.key(1), 2)
    batched = jax.jit(jax.vmap(run))(mats, keys)
    for i in range(2):
        np.testing.assert_allclose(batched[i], np.linalg.eigvalsh(np.asarray(mats[i]))[::-1][:2], rtol=1e-6)
        np.testing.assert_allclose(batched[i], run(mats[i], keys[i]), rtol=1e-9)


@pytest.mark.parametrize("which", list(Which))
def test_lobpcg_eigh(which, rng):
    n, k = 30, 2
    x = rng.standard_normal((n, n))
    a = x @ x.T / n
    am = jnp.asarray(a)
    w, v, _ = jax.jit(lambda key: la.lobpcg_eigh(lambda y: am @ y, n, k, key=key, which=which,
                                                 dtype=jnp.float64, max_iter=200))(jax.random.key(0))
    ref = np.linalg.eigvalsh(a)
    ref = ref[::-1][:k] if which is Which.LARGEST else ref[:k]
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)


def test_matfree_svd_vs_numpy(dtype, rng):
    m, n, k = 40, 25, 4
    u0, _ = np.linalg.qr(rng.standard_normal((m, m)))
    v0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s0 = np.concatenate([[9.0, 7.0, 5.0, 4.0], 0.5 * rng.uniform(size=n - 4)])
    a = (u0[:, :n] * s0) @ v0.T
    am = jnp.asarray(a, dtype)
    run = jax.jit(lambda key: la.matfree_svd(lambda x: am @ x, lambda y: am.T @ y, n, k, key=key, dtype=dtype))
    u, s, v, info = run(jax.random.key(0))
    assert s.dtype == dtype and u.shape == (m, k) and v.shape == (n, k)
    tol = 1e-4 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(s, s0[:k], rtol=tol)
    np.testing.assert_allclose(proj(v), proj(v0[:, :k]), atol=10 * tol)
    np.testing.assert_allclose(np.asarray(am) @ np.asarray(v), np.asarray(u) * np.asarray(s), atol=20 * tol)
    assert bool(info.converged) and float(jnp.max(info.residual)) <= np.sqrt(np.finfo(dtype).eps)
    # sign convention: largest-|entry| of each right singular vector positive
    vv = np.asarray(v)
    assert np.all(vv[np.argmax(np.abs(vv), axis=0), np.arange(k)] > 0)


def test_matfree_svd_max_iter_caps_iterations(rng):
    a = jnp.asarray(rng.standard_normal((20, 20)))
    _, _, _, info = la.matfree_svd(lambda x: a @ x, lambda y: a.T @ y, 20, 3, key=jax.random.key(0),
                                   dtype=jnp.float64, oversample=0, max_iter=3, tol=1e-14)
    assert int(info.iterations) == 3 and not bool(info.converged)


def small_net(params, x):
    w1, b1, w2 = params
    return w2 @ jnp.tanh(w1 @ x + b1)


def test_jacobian_topk_svd_matches_jacfwd_svd(dtype, rng):
    din, hid, dout, k = 16, 24, 12, 3
    params = tuple(jnp.asarray(p, dtype) for p in (rng.standard_normal((hid, din)) / 4,
                                                    rng.standard_normal(hid) / 4,
                                                    rng.standard_normal((dout, hid)) / 5))
    x = jnp.asarray(rng.standard_normal(din), dtype)
    f = lambda z: small_net(params, z)
    u, s, v, info = jax.jit(lambda xx, key: la.jacobian_topk_svd(f, xx, k, key=key))(x, jax.random.key(3))
    jac = np.asarray(jax.jacfwd(f)(x), float)
    uu, ss, vh = np.linalg.svd(jac)
    tol = 1e-3 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(s, ss[:k], rtol=tol)
    np.testing.assert_allclose(proj(v), proj(vh[:k].T), atol=20 * tol)
    np.testing.assert_allclose(proj(u), proj(uu[:, :k]), atol=20 * tol)
    assert bool(info.converged)


def test_jacobian_topk_svd_vmap_over_points(rng):
    din, dout = 8, 10
    w = jnp.asarray(rng.standard_normal((dout, din)))
    f = lambda z: jnp.sin(w @ z)
    xs = jnp.asarray(rng.standard_normal((3, din)))
    run = lambda xx: la.jacobian_topk_svd(f, xx, 2, key=jax.random.key(0), oversample=3)[1]
    batched = jax.jit(jax.vmap(run))(xs)
    for i in range(3):
        ref = np.linalg.svd(np.asarray(jax.jacfwd(f)(xs[i])), compute_uv=False)[:2]
        np.testing.assert_allclose(batched[i], ref, rtol=1e-6)


def test_iterative_bad_inputs():
    a = jnp.eye(10)
    with pytest.raises(ValueError, match="k <= n"):
        la.subspace_iteration(lambda x: a @ x, 10, 11, key=jax.random.key(0))
    with pytest.raises(ValueError, match="5 \\* k < n"):
        la.lobpcg_eigh(lambda x: a @ x, 10, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="m \\(output dimension\\)"):
        la.matfree_svd(lambda x: x[:2], lambda y: jnp.zeros(10).at[:2].set(y), 10, 3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="Python int"):
        la.matfree_svd(lambda x: x, lambda y: y, 10, 2.0, key=jax.random.key(0))
    with pytest.raises(TypeError, match="floating"):
        la.jacobian_topk_svd(lambda x: x, jnp.arange(4), 1, key=jax.random.key(0))
