"""Log-domain Sinkhorn (unrolled and CPP stop-v modes), logdet, coding rates (MCR² / MLC)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from eigenkit import linalg as la
from eigenkit.linalg import SinkhornGrad


def cpp_sinkhorn_reference(c, eta, n_iter):
    """float64 NumPy re-statement of the CPP SinkhornDistance semantics (uniform 1/n marginals, u on even steps,
    v on odd steps), times n as MLC uses it."""
    n, m = c.shape
    lse = lambda x, ax: np.log(np.sum(np.exp(x - x.max(ax, keepdims=True)), ax)) + x.max(ax)
    u, v = np.zeros(n), np.zeros(m)
    for i in range(n_iter):
        mm = (c + u[:, None] + v[None, :]) / eta
        if i % 2 == 0:
            u = eta * (np.log(1 / n) - lse(mm, 1)) + u
        else:
            v = eta * (np.log(1 / m) - lse(mm, 0)) + v
    return n * np.exp((c + u[:, None] + v[None, :]) / eta)


@pytest.mark.parametrize("mode", list(SinkhornGrad))
def test_sinkhorn_matches_cpp_reference_and_is_doubly_stochastic(mode, dtype, rng):
    c = rng.standard_normal((6, 6))
    g5 = jax.jit(lambda x: la.sinkhorn_log(x, eta=0.5, n_iter=5, grad_mode=mode))(jnp.asarray(c, dtype))
    assert g5.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(g5, cpp_sinkhorn_reference(c, 0.5, 5), rtol=10 * tol, atol=tol)
    np.testing.assert_allclose(g5.sum(1), 1.0, atol=tol)  # odd n_iter: last update is a u-update
    g = la.sinkhorn_log(jnp.asarray(c, dtype), eta=0.5, n_iter=301, grad_mode=mode)
    np.testing.assert_allclose(g.sum(0), 1.0, atol=1e-4 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(g.sum(1), 1.0, atol=tol)
    assert np.all(np.asarray(g) >= 0)


def test_sinkhorn_marginals_permutation_and_vmap(rng):
    c = jnp.asarray(rng.standard_normal((4, 6)))
    mu = jnp.asarray([0.1, 0.2, 0.3, 0.4])
    nu = jnp.full((6,), 1 / 6)
    p = la.sinkhorn_log(c, eta=1.0, n_iter=400, row_marginal=mu, col_marginal=nu)
    np.testing.assert_allclose(p.sum(1), mu, atol=1e-10)
    np.testing.assert_allclose(p.sum(0), nu, atol=1e-8)
    perm = np.array([2, 0, 3, 1])
    pp = la.sinkhorn_log(c[perm][:, perm], eta=1.0, n_iter=400, row_marginal=mu[perm], col_marginal=nu[:4] * 1.5)
    ps = la.sinkhorn_log(c[:, :4], eta=1.0, n_iter=400, row_marginal=mu, col_marginal=nu[:4] * 1.5)
    np.testing.assert_allclose(pp, ps[perm][:, perm], atol=1e-9)  # permutation equivariance
    cs = jnp.asarray(rng.standard_normal((3, 5, 5)))
    run = lambda x: la.sinkhorn_log(x, eta=0.3, n_iter=7)
    batched = jax.jit(jax.vmap(run))(cs)
    for i in range(3):
        np.testing.assert_allclose(batched[i], run(cs[i]), atol=1e-12)


def test_sinkhorn_gradients(rng):
    c = jnp.asarray(rng.standard_normal((5, 5)))
    t = jnp.asarray(rng.standard_normal((5, 5)))
    loss = lambda x, mode: jnp.sum(la.sinkhorn_log(x, eta=0.7, n_iter=5, grad_mode=mode) * t.astype(x.dtype))
    check_grads(jax.jit(lambda x: loss(x, SinkhornGrad.UNROLLED)), (c,), 1, modes=["fwd", "rev"])
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    g_stop = grad(c, SinkhornGrad.STOP_V)
    g_unr = grad(c, SinkhornGrad.UNROLLED)
    assert np.all(np.isfinite(g_stop)) and not np.allclose(g_stop, g_unr)

    # STOP_V == unrolled differentiation with the v-iterates frozen as constants (CPP's detach semantics)
    def frozen_v_reference(x):
        n = x.shape[0]
        eta = 0.7
        u = jnp.zeros(n)
        v = jnp.zeros(n)
        for i in range(5):
            mm = (x + u[:, None] + v[None, :]) / eta
            if i % 2 == 0:
                u = u + eta * (-jax.nn.logsumexp(mm, axis=1))
            else:
                v = jax.lax.stop_gradient(v + eta * (-jax.nn.logsumexp(mm, axis=0)))
        return jnp.sum(jnp.exp((x + u[:, None] + v[None, :]) / eta) * t)

    np.testing.assert_allclose(g_stop, jax.jit(jax.grad(frozen_v_reference))(c), atol=1e-12)
    # f32 gradient finite and close to f64
    g32 = grad(c.astype(jnp.float32), SinkhornGrad.STOP_V)
    np.testing.assert_allclose(g32, g_stop, atol=1e-4)


def test_logdet_psd(dtype, rng):
    x = rng.standard_normal((6, 4))
    a = x.T @ x + np.eye(4)
    val = jax.jit(la.logdet_psd)(jnp.asarray(a, dtype))
    np.testing.assert_allclose(val, np.linalg.slogdet(a)[1], rtol=1e-5 if dtype == np.float32 else 1e-12)
    ab = np.stack([a, 2 * np.eye(4)])
    np.testing.assert_allclose(jax.vmap(la.logdet_psd)(jnp.asarray(ab)), [np.linalg.slogdet(a)[1], 4 * np.log(2)])
    check_grads(jax.jit(la.logdet_psd), (jnp.asarray(a),), 1, modes=["rev"])
    assert np.isnan(la.logdet_psd(-jnp.eye(2)))  # documented: not PD -> NaN


def direct_rate(z, eps):
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * z.T @ z)[1]


def direct_compressed(z, pi, eps):
    n, d = z.shape
    total = 0.0
    for j in range(pi.shape[1]):
        t = pi[:, j].sum()
        if t > 0:
            total += t / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (t * eps**2) * z.T @ np.diag(pi[:, j]) @ z)[1]
    return total


@pytest.mark.parametrize("shape", [(12, 4), (4, 12)], ids=["n>d", "n<d"])
def test_coding_rates_equal_direct_definition(shape, dtype, rng):
    z = rng.standard_normal(shape)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    eps = 0.5
    r = jax.jit(lambda x: la.coding_rate(x, eps))(jnp.asarray(z, dtype))
    rt = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(r, direct_rate(z, eps), rtol=rt)
    logits = rng.standard_normal((shape[0], 3))
    pi = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pi[:, 2] = 0.0  # an empty cluster contributes 0
    rc = jax.jit(lambda x, p: la.compressed_coding_rate(x, p, eps))(jnp.asarray(z, dtype), jnp.asarray(pi, dtype))
    np.testing.assert_allclose(rc, direct_compressed(z, pi, eps), rtol=10 * rt)
    if dtype == np.float64:
        check_grads(jax.jit(lambda x: la.coding_rate(x, eps)), (jnp.asarray(z),), 1, modes=["rev"])
        pi_pos = jnp.asarray(np.abs(pi) + 0.1)
        rc_fn = jax.jit(lambda x, p: la.compressed_coding_rate(x, p, eps))
        check_grads(rc_fn, (jnp.asarray(z), pi_pos), 1, modes=["rev"])
        g = jax.jit(jax.grad(rc_fn, argnums=1))(jnp.asarray(z), jnp.asarray(pi))
        assert np.all(np.isfinite(g))  # finite at hard zero memberships


def test_coding_rate_properties_and_vmap(rng):
    # orthonormal columns: R = d/2 · log(1 + d/(n ε²)) when zᵀz = I_d
    q, _ = np.linalg.qr(rng.standard_normal((10, 3)))
    np.testing.assert_allclose(la.coding_rate(jnp.asarray(q), 0.3), 1.5 * np.log(1 + 3 / (10 * 0.09)), rtol=1e-12)
    # one-hot partition: R_c = class-wise MCR² compression; single cluster: R_c = R
    z = rng.standard_normal((9, 3))
    lab = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    onehot = np.eye(3)[lab]
    ref = sum((lab == j).sum() / 9 * direct_rate(z[lab == j], 0.4) for j in range(3))
    np.testing.assert_allclose(la.compressed_coding_rate(jnp.asarray(z), jnp.asarray(onehot), 0.4), ref, rtol=1e-12)
    np.testing.assert_allclose(la.compressed_coding_rate(jnp.asarray(z), jnp.ones((9, 1)), 0.4),
                               la.coding_rate(jnp.asarray(z), 0.4), rtol=1e-12)
    perm = rng.permutation(9)
    np.testing.assert_allclose(la.compressed_coding_rate(jnp.asarray(z[perm]), jnp.asarray(onehot[perm]), 0.4),
                               ref, rtol=1e-12)
    zs = jnp.asarray(rng.standard_normal((3, 9, 3)))
    rb = jax.vmap(lambda x: la.coding_rate(x, 0.4))(zs)
    np.testing.assert_allclose(rb, [direct_rate(np.asarray(x), 0.4) for x in zs], rtol=1e-12)
    rcb = jax.vmap(lambda x: la.compressed_coding_rate(x, jnp.asarray(onehot), 0.4))(zs)
    np.testing.assert_allclose(rcb, [direct_compressed(np.asarray(x), onehot, 0.4) for x in zs], rtol=1e-12)


def test_sinkhorn_rate_bad_inputs():
    with pytest.raises(ValueError, match="rank 2"):
        la.sinkhorn_log(jnp.ones(3), eta=1.0, n_iter=3)
    with pytest.raises(TypeError, match="SinkhornGrad"):
        la.sinkhorn_log(jnp.ones((3, 3)), eta=1.0, n_iter=3, grad_mode="cpp")
    with pytest.raises(ValueError, match="row_marginal"):
        la.sinkhorn_log(jnp.ones((3, 3)), eta=1.0, n_iter=3, row_marginal=jnp.ones(4))
    with pytest.raises(ValueError, match="eps must be > 0"):
        la.coding_rate(jnp.ones((3, 2)), 0.0)
    with pytest.raises(ValueError, match="pi must have shape"):
        la.compressed_coding_rate(jnp.ones((3, 2)), jnp.ones((4, 2)), 0.5)
    with pytest.raises(ValueError, match="square"):
        la.logdet_psd(jnp.ones((2, 3)))
    assert np.all(np.isnan(la.sinkhorn_log(jnp.full((3, 3), jnp.nan), eta=1.0, n_iter=3)))
