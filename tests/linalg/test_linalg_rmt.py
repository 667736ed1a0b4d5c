"""Marchenko–Pastur law, noise-variance estimate, BBP spike detection."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import linalg as la


def mp_mass(ratio, s2, lo, x_hi, num=20000):
    """∫_lo^x_hi pdf by the substitution x = lo + (hi-lo)(1-cos θ)/2 (bounded integrand), midpoint rule."""
    hi = float(la.mp_edges(ratio, s2)[1])
    th_hi = np.arccos(1 - 2 * (min(x_hi, hi) - lo) / (hi - lo))
    th = (np.arange(num) + 0.5) * th_hi / num
    x = lo + (hi - lo) * (1 - np.cos(th)) / 2
    y = np.asarray(la.marchenko_pastur_pdf(jnp.asarray(x), ratio, s2)) * (hi - lo) / 2 * np.sin(th)
    return float(np.sum(y) * th_hi / num)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0, 2.0])
def test_mp_pdf_integrates_and_edges(ratio, dtype):
    lo, hi = (float(e) for e in la.mp_edges(ratio, 2.0))
    np.testing.assert_allclose([lo, hi], [2.0 * (1 - np.sqrt(ratio)) ** 2, 2.0 * (1 + np.sqrt(ratio)) ** 2])
    np.testing.assert_allclose(mp_mass(ratio, 2.0, lo, hi), min(1.0, 1.0 / ratio), rtol=1e-6)
    x = jnp.linspace(0.0, hi + 1, 64, dtype=dtype)
    y = jax.jit(lambda t: la.marchenko_pastur_pdf(t, ratio, 2.0))(x)
    assert y.dtype == dtype and np.all(np.asarray(y) >= 0)
    assert float(y[-1]) == 0.0


def test_mp_matches_sampled_wishart_and_median():
    rng = np.random.default_rng(0)
    n, p, s2 = 2000, 500, 1.5
    e = rng.standard_normal((n, p)) * np.sqrt(s2)
    lam = np.linalg.eigvalsh(e.T @ e / n)
    lo, hi = (float(t) for t in la.mp_edges(p / n, s2))
    assert lo * 0.97 < lam.min() and lam.max() < hi * 1.03
    # empirical CDF vs integrated density at a few points (Kolmogorov distance)
    xs = np.linspace(lo, hi, 9)[1:-1]
    cdf = [mp_mass(p / n, s2, lo, x) for x in xs]
    emp = [(lam <= x).mean() for x in xs]
    np.testing.assert_allclose(emp, cdf, atol=0.01)
    np.testing.assert_allclose(la.mp_median(p / n, s2, dtype=jnp.float64), np.median(lam), rtol=0.01)
    np.testing.assert_allclose(la.estimate_noise_variance(jnp.asarray(lam), n, p), s2, rtol=0.01)


def spiked_sample(rng, n, p, spikes, s2=1.0):
    e = rng.standard_normal((n, p)) * np.sqrt(s2)
    q, _ = np.linalg.qr(rng.standard_normal((p, len(spikes))))
    for i, ell in enumerate(spikes):
        e += np.sqrt(ell) * rng.standard_normal((n, 1)) * q[:, i]
    return np.linalg.eigvalsh(e.T @ e / n)


def test_detect_planted_spikes_above_bbp_and_none_in_noise(dtype):
    rng = np.random.default_rng(1)
    n, p = 1000, 200
    gamma = p / n
    bbp = float(np.sqrt(gamma))  # ℓ > σ² √γ ≈ 0.447
    detect = jax.jit(lambda lam: la.detect_spikes(lam, n, p, max_rank=8))
    lam = spiked_sample(rng, n, p, [8.0, 4.0, 2.0])  # all well above BBP
    det = detect(jnp.asarray(lam, dtype))
    assert int(det.count) == 3 and det.mask.shape == (p,)
    assert set(np.argsort(lam)[-3:]) == set(np.nonzero(np.asarray(det.mask))[0])
    np.testing.assert_allclose(det.sigma2, 1.0, rtol=0.03)
    # sample spike locations match the BBP/Baik–Silverstein limit
    np.testing.assert_allclose(np.sort(lam)[-3:], la.spiked_eigenvalue_limit(jnp.asarray([2.0, 4.0, 8.0]) + 1.0,
                                                                             gamma), rtol=0.1)
    np.testing.assert_allclose(la.bbp_threshold(gamma), 1 + bbp)
    for seed in range(3):
        noise = spiked_sample(np.random.default_rng(10 + seed), n, p, [])
        assert int(detect(jnp.asarray(noise, dtype)).count) == 0
    below = spiked_sample(np.random.default_rng(5), n, p, [0.5 * bbp])  # below the BBP threshold: missed
    assert int(detect(jnp.asarray(below, dtype)).count) == 0
    # max_rank caps the count, known sigma2 accepted, vmap over several spectra == loop
    capped = la.detect_spikes(jnp.asarray(lam), n, p, sigma2=1.0, max_rank=2)
    assert int(capped.count) == 2 and bool(capped.mask[np.argmax(lam)])
    both = jnp.asarray(np.stack([lam, noise]))
    counts = jax.vmap(lambda l: la.detect_spikes(l, n, p).count)(both)
    assert counts.tolist() == [3, 0]


def test_rmt_grad_of_pdf_and_bad_inputs():
    g = jax.grad(lambda s2: la.marchenko_pastur_pdf(jnp.asarray(1.0), 0.5, s2))(1.0)
    fd = (float(la.marchenko_pastur_pdf(jnp.asarray(1.0), 0.5, 1.0 + 1e-6))
          - float(la.marchenko_pastur_pdf(jnp.asarray(1.0), 0.5, 1.0 - 1e-6))) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    with pytest.raises(ValueError, match="rank 1"):
        la.detect_spikes(jnp.ones((3, 3)), 10, 3)
    with pytest.raises(ValueError, match="max_rank"):
        la.detect_spikes(jnp.ones(3), 10, 3, max_rank=4)
    with pytest.raises(TypeError, match="floating"):
        la.marchenko_pastur_pdf(jnp.arange(3), 0.5)
    with pytest.raises(TypeError, match="NoiseEstimator"):
        la.estimate_noise_variance(jnp.ones(3), 10, 3, method="median")
