"""Matrix-free masking-kernel products (eigenkit.methods.rkhs.masking_kernel_matvec) against the materialised kernel,
and the top-d eigenspace of the 10-bit cube by LOBPCG with them (issue 23)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import linalg
from eigenkit.methods import rkhs


def _cube(length, vocab=2):
    return np.array(list(itertools.product(range(vocab), repeat=length)), dtype=np.int64)


@pytest.mark.parametrize("vocab, length, n, block", [(2, 6, 50, 16), (3, 4, 70, 32), (2, 5, 7, 1024)])
@pytest.mark.parametrize("k", [None, 3])
def test_matvec_equals_materialised_kernel_product(vocab, length, n, block, k):
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, size=(n, length)).astype(np.int64)
    v = rng.normal(size=(n,) if k is None else (n, k))
    kmat = np.asarray(rkhs.masking_kernel(x, x, 0.3, vocab), np.float64)
    ref = kmat @ v
    out = rkhs.masking_kernel_matvec(x, jnp.asarray(v, jnp.float64), 0.3, vocab, block_size=block)
    assert out.shape == v.shape and out.dtype == jnp.float64
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # under jit, with a traced alpha (vocab_size and block_size set shapes: static)
    f = jax.jit(rkhs.masking_kernel_matvec, static_argnames=("vocab_size", "block_size"))
    out_jit = f(jnp.asarray(x), jnp.asarray(v, jnp.float64), jnp.asarray(0.3, jnp.float64), vocab_size=vocab,
                block_size=block)
    np.testing.assert_allclose(out_jit, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # float32 v: computed and returned in float32
    out32 = rkhs.masking_kernel_matvec(x, jnp.asarray(v, jnp.float32), 0.3, vocab, block_size=block)
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_matvec_at_the_ends_of_alpha(alpha):
    x = _cube(3)
    v = jnp.asarray(np.random.default_rng(1).normal(size=(8, 2)), jnp.float64)
    ref = np.asarray(rkhs.masking_kernel(x, x, alpha), np.float64) @ np.asarray(v)
    np.testing.assert_allclose(rkhs.masking_kernel_matvec(x, v, alpha, block_size=3), ref, rtol=1e-12, atol=1e-12)


def test_grad_in_v_is_the_transpose_product_and_no_kernel_is_saved():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, size=(45, 6)).astype(np.int64)
    v = jnp.asarray(rng.normal(size=(45, 2)), jnp.float64)
    u = jnp.asarray(rng.normal(size=(45, 2)), jnp.float64)
    kmat = np.asarray(rkhs.masking_kernel(x, x, 0.4), np.float64)
    f = lambda w: rkhs.masking_kernel_matvec(x, w, 0.4, block_size=16)  # noqa: E731
    g = jax.grad(lambda w: jnp.sum(f(w) * u))(v)
    np.testing.assert_allclose(g, kmat.T @ np.asarray(u), rtol=1e-12, atol=1e-12)
    _, vjp = jax.vjp(f, v)
    # the backward pass recomputes each (16, 45) kernel block: no residual as large as the kernel is kept
    assert max(np.size(r) for r in jax.tree_util.tree_leaves(vjp)) < kmat.size
    np.testing.assert_allclose(vjp(u)[0], g, rtol=1e-12)
    # and in a traced alpha, against the materialised kernel's derivative
    da = jax.grad(lambda a: jnp.sum(rkhs.masking_kernel_matvec(x, v, a, block_size=16) * u))(0.4)
    da_ref = jax.grad(lambda a: jnp.sum((rkhs.masking_kernel(x, x, a) @ v) * u))(0.4)
    assert float(da) == pytest.approx(float(da_ref), rel=1e-10)


def test_bad_inputs_raise_clear_errors():
    x = _cube(3)
    v = jnp.ones(8, jnp.float64)
    with pytest.raises(ValueError, match=r"v must have shape \(8,\) or \(8, k\)"):
        rkhs.masking_kernel_matvec(x, jnp.ones(7, jnp.float64), 0.5)
    with pytest.raises(ValueError, match="v must have rank 1 or 2"):
        rkhs.masking_kernel_matvec(x, jnp.ones((8, 2, 2), jnp.float64), 0.5)
    with pytest.raises(ValueError, match="x must have rank 2"):
        rkhs.masking_kernel_matvec(x[0], v, 0.5)
    with pytest.raises(TypeError, match="x must have an integer dtype"):
        rkhs.masking_kernel_matvec(x.astype(np.float64), v, 0.5)
    with pytest.raises(TypeError, match="v must have a floating dtype"):
        rkhs.masking_kernel_matvec(x, jnp.ones(8, jnp.int64), 0.5)
    with pytest.raises(ValueError, match="alpha must be in"):
        rkhs.masking_kernel_matvec(x, v, 1.5)
    with pytest.raises(ValueError, match="block_size must satisfy"):
        rkhs.masking_kernel_matvec(x, v, 0.5, block_size=0)
    with pytest.raises(TypeError, match="vocab_size must be a Python int"):
        rkhs.masking_kernel_matvec(x, v, 0.5, vocab_size=2.0)


def test_lobpcg_with_the_matvec_finds_the_degree_two_parity_eigenspace():
    """10-bit cube, alpha = 0.5: the eigenvalues of K/n are (1-alpha)^|S|, so d = 1 + 10 + 45 = 56 ends at a gap
    (1-alpha)^2 - (1-alpha)^3 = 0.125 and the top-d space is the span of the Walsh parities of degree <= 2.

    Tolerance: LOBPCG (17 iterations here) stops when every residual is below 10 n eps (lambda + |A u|) ~ 1e-12;
    by the Davis-Kahan sin-theta theorem sin(theta_max) <= ||R||_F / gap, measured 1.7e-11 from the returned
    residuals (max 6.7e-13), with sin(theta_max) = 1.0e-11 and ||P - P*||_F = 1.8e-11 (alpha = 0.2 / 0.8: 2.5e-11 /
    2.7e-12). The test asserts the Davis-Kahan bound itself and 1e-9 absolute (50x margin for other BLAS / keys)."""
    length, alpha = 10, 0.5
    x = _cube(length)
    n, d = len(x), 1 + length + math.comb(length, 2)
    xj = jnp.asarray(x)

    @jax.jit
    def solve(key):
        mv = lambda v: rkhs.masking_kernel_matvec(xj, v, alpha, block_size=256) / n  # noqa: E731
        return linalg.lobpcg_eigh(mv, n, d, key=key, dtype=jnp.float64, max_iter=200)

    w, u, info = solve(jax.random.key(0))
    assert bool(info.converged) and int(info.iterations) < 200
    lam = np.array([1.0] + [1 - alpha] * length + [(1 - alpha) ** 2] * math.comb(length, 2))
    np.testing.assert_allclose(w, lam, atol=1e-12)
    # projector agreement without n x n projectors: E = U - Q Q^T U, sin(theta_max) = ||E||_2,
    # ||P_U - P_Q||_F = sqrt(2) ||E||_F
    q = rkhs.walsh_parities(x, 2)[0] / math.sqrt(n)
    uq = np.linalg.qr(np.asarray(u))[0]
    e = uq - q @ (q.T @ uq)
    sin_max, proj_fro = np.linalg.norm(e, 2), math.sqrt(2) * np.linalg.norm(e)
    gap = (1 - alpha) ** 2 - (1 - alpha) ** 3
    bound = float(np.linalg.norm(np.asarray(info.residual))) / gap  # residuals relative to max|w| = 1
    assert sin_max <= bound and sin_max < 1e-9, (sin_max, bound)
    assert proj_fro < 1e-9
    # cross-check the cheap measure on the full projectors (n = 1024: small enough here)
    pu, pq = uq @ uq.T, q @ q.T
    assert np.linalg.norm(pu - pq) == pytest.approx(proj_fro, rel=1e-3, abs=1e-13)
