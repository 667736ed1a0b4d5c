"""RKHS view of augmentation-based SSL (eigenkit.methods.rkhs) on the closed-form toy of shared/methods/rkhs.md:
the cube {0,1}^L (or V^L) under i.i.d. masking, whose kernel, spectrum, eigenfunctions and κ² are known exactly."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from eigenkit import linalg
from eigenkit.methods import rkhs


def _cube(length, vocab=2):
    return np.array(list(itertools.product(range(vocab), repeat=length)), dtype=np.int64)


@pytest.mark.parametrize("vocab, length", [(2, 4), (3, 3)])
@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
def test_product_formula_equals_enumeration(vocab, length, alpha):
    x = _cube(length, vocab)
    _, p = rkhs.masking_augmentations(x, alpha, vocab)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
    k_enum = rkhs.augmentation_kernel(jnp.asarray(p))
    k_prod = rkhs.masking_kernel(x, x, alpha, vocab)
    np.testing.assert_allclose(k_enum, k_prod, rtol=1e-12, atol=1e-12)
    # kappa^2 = (alpha + V (1 - alpha))^L, = (2 - alpha)^L on the binary cube
    assert float(rkhs.kappa_sq(k_prod)) == pytest.approx((alpha + vocab * (1 - alpha)) ** length, rel=1e-12)
    # K 1 = 1 under the uniform P_X: lambda_0 = 1 with a constant eigenfunction
    np.testing.assert_allclose(k_prod @ np.full(len(x), 1.0 / len(x)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_spectrum_is_one_minus_alpha_to_the_degree_with_binomial_multiplicities(alpha):
    length = 6
    x = _cube(length)
    lam, psi = rkhs.kernel_spectrum(rkhs.masking_kernel(x, x, alpha))
    expected = sorted(((1 - alpha) ** j for j in range(length + 1) for _ in range(math.comb(length, j))),
                      reverse=True)
    np.testing.assert_allclose(lam, expected, atol=1e-12)
    assert float(rkhs.kappa_sq(rkhs.masking_kernel(x, x, alpha))) == pytest.approx((2 - alpha) ** length)
    # the eigenfunctions are L2(P_X)-orthonormal, and the Walsh parities are eigenfunctions: (K/n) chi_S = lam_S chi_S
    np.testing.assert_allclose(psi.T @ psi / len(x), np.eye(len(x)), atol=1e-10)
    chi, subsets = rkhs.walsh_parities(x)
    k = np.asarray(rkhs.masking_kernel(x, x, alpha)) / len(x)
    for j, s in enumerate(subsets):
        np.testing.assert_allclose(k @ chi[:, j], (1 - alpha) ** len(s) * chi[:, j], atol=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("degree", [1, 2])
def test_top_d_projector_at_degree_boundaries_is_the_low_degree_parity_projector(alpha, degree):
    length = 6
    x = _cube(length)
    d = sum(math.comb(length, j) for j in range(degree + 1))
    proj, lam = rkhs.top_d_eigenspace(rkhs.masking_kernel(x, x, alpha) / len(x), d)
    chi, _ = rkhs.walsh_parities(x, degree)
    assert chi.shape[1] == d
    np.testing.assert_allclose(proj, chi @ chi.T / len(x), atol=1e-10)  # parities are orthogonal, norm^2 = n
    assert float(lam[d - 1] / lam[d]) == pytest.approx(1 / (1 - alpha))  # a degree boundary is a spectral gap
    # the learned-span metrics vanish on the exact eigenspace and not elsewhere
    k = rkhs.masking_kernel(x, x, alpha) / len(x)
    assert abs(float(rkhs.trace_gap(k, jnp.asarray(chi)))) < 1e-10
    assert float(rkhs.trace_gap(k, jnp.asarray(rkhs.walsh_parities(x)[0][:, -d:]))) > 0.1
    np.testing.assert_allclose(linalg.principal_angles(jnp.asarray(chi), jnp.linalg.eigh(proj)[1][:, -d:]), 0.0,
                               atol=1e-6)


def test_projector_gradients_are_exact_on_the_degenerate_spectrum():
    """The cube's spectrum is massively degenerate inside each degree; the top-d projector at a degree boundary is
    still differentiable, and since that eigenspace is the same for every alpha its derivative in alpha is 0."""
    length = 5
    x = _cube(length)
    d = 1 + length
    target = jnp.asarray(np.random.default_rng(0).normal(size=(len(x), len(x))))

    def loss_alpha(alpha):
        p = linalg.eigh_projector(rkhs.masking_kernel(x, x, alpha) / len(x), d)
        return jnp.sum((p - target) ** 2)

    g = jax.grad(loss_alpha)(0.4)
    assert bool(jnp.isfinite(g)) and abs(float(g)) < 1e-8
    k0 = rkhs.masking_kernel(x, x, 0.4) / len(x)
    sym = jnp.asarray(np.random.default_rng(1).normal(size=k0.shape))
    sym = (sym + sym.T) / 2

    def loss_k(t):
        return jnp.sum((linalg.eigh_projector(k0 + t * sym, d) - target) ** 2)

    check_grads(loss_k, (0.0,), order=1, modes=("fwd", "rev"), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert abs(float(jax.grad(loss_k)(0.0))) > 1e-6  # a generic perturbation does move the eigenspace


def test_ridge_probe_and_kernel_ridge_against_numpy():
    length = 6
    x = _cube(length)
    chi, subsets = rkhs.walsh_parities(x, 2)
    rng = np.random.default_rng(2)
    w = rng.normal(size=chi.shape[1])
    y = chi @ w + 3.0
    # exact eigenfunctions recover a degree-<=2 target (with its constant) to rounding
    pred = rkhs.ridge_probe(jnp.asarray(chi[:, 1:]), jnp.asarray(y), jnp.asarray(chi[:, 1:]), 0.0)
    np.testing.assert_allclose(pred, y, atol=1e-9)
    lam = 1e-2
    k = np.asarray(rkhs.masking_kernel(x, x, 0.3))
    idx = rng.permutation(len(x))
    tr, te = idx[:40], idx[40:]
    ref = k[np.ix_(te, tr)] @ np.linalg.solve(k[np.ix_(tr, tr)] + 40 * lam * np.eye(40), y[tr])
    np.testing.assert_allclose(rkhs.kernel_ridge(k[np.ix_(tr, tr)], y[tr], k[np.ix_(te, tr)], lam), ref, rtol=1e-9)
    phi = rng.normal(size=(40, 5))
    a = np.c_[phi, np.ones(40)]
    reg = 40 * lam * np.diag([1.0] * 5 + [0.0])
    ref = np.c_[phi[:3], np.ones(3)] @ np.linalg.solve(a.T @ a + reg, a.T @ y[tr])
    np.testing.assert_allclose(rkhs.ridge_probe(phi, y[tr], phi[:3], lam), ref, rtol=1e-9)
    with pytest.raises(ValueError, match="lam must be > 0"):
        rkhs.kernel_ridge(k[:4, :4], y[:4], k[:2, :4], 0.0)


def test_spectral_contrastive_loss_against_the_double_sum():
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    pos = np.mean([z1[i] @ z2[i] for i in range(6)])
    neg = np.mean([(z1[i] @ z2[j]) ** 2 for i in range(6) for j in range(6) if i != j])
    assert float(rkhs.spectral_contrastive_loss(z1, z2)) == pytest.approx(-2 * pos + neg, rel=1e-12)
    g = jax.grad(lambda z: rkhs.spectral_contrastive_loss(z, z2))(jnp.asarray(z1))
    assert g.shape == z1.shape and bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        rkhs.spectral_contrastive_loss(z1[:1], z2[:1])


def test_monte_carlo_kappa_matches_the_product_formula():
    alpha, length = 0.5, 3
    x = jnp.asarray(_cube(length))

    def sample(key, xi):
        return jnp.where(jax.random.bernoulli(key, alpha, xi.shape), rkhs.MASK, xi)

    def log_p(a, xi):
        per = jnp.where(a == rkhs.MASK, jnp.log(alpha), jnp.where(a == xi, jnp.log(1 - alpha), -jnp.inf))
        return jnp.sum(per)

    k2, diag = rkhs.mc_kappa_sq(sample, log_p, x, key=jax.random.key(0), n_aug=4000)
    assert diag.shape == (8,)
    assert float(k2) == pytest.approx((2 - alpha) ** length, rel=0.05)


def test_bad_inputs_name_the_argument():
    x = _cube(3)
    with pytest.raises(ValueError, match="alpha must be in"):
        rkhs.masking_kernel(x, x, 1.5)
    with pytest.raises(ValueError, match="x_prime must have shape"):
        rkhs.masking_kernel(x, x[:, :2], 0.5)
    with pytest.raises(TypeError, match="x must have an integer dtype"):
        rkhs.masking_kernel(x.astype(np.float64), x, 0.5)
    with pytest.raises(ValueError, match="enumerate only small L"):
        rkhs.masking_augmentations(np.zeros((1, 20), np.int64), 0.5)
