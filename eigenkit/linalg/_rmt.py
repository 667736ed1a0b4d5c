"""Random-matrix tools for spiked-covariance detection (the EigenShield-style defence; Marchenko–Pastur bulk,
BBP threshold, Tracy–Widom-margin spike detection).

Convention: data ``E: (n, p)`` with ``n`` samples and ``p`` dimensions, sample covariance ``S = EᵀE/n``,
aspect ratio ``γ = p/n`` (``ratio``), noise variance ``σ²`` (``sigma2``). For pure noise with i.i.d. entries of
variance ``σ²``, as ``n, p → ∞`` the eigenvalues of ``S`` follow Marchenko–Pastur (1967) on
``[σ²(1−√γ)², σ²(1+√γ)²]``, plus an atom of mass ``1 − 1/γ`` at 0 when ``γ > 1``. A population spike
``σ² + ℓ`` separates from the bulk iff ``ℓ > σ²√γ`` (BBP transition, Baik–Ben Arous–Péché 2005), and its sample
eigenvalue then converges to ``(σ² + ℓ)(1 + γσ²/ℓ)`` (Baik & Silverstein 2006).
All functions are jit/vmap-compatible; ``ratio``/``sigma2`` may be traced, sizes ``n``, ``p`` are Python ints.
Concrete (non-traced) ``ratio <= 0`` or ``sigma2 < 0`` raise a ``ValueError``; traced values are not checked.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array, check_nonempty, check_positive, check_rank_arg

__all__ = [
    "NoiseEstimator",
    "SpikeDetection",
    "bbp_threshold",
    "detect_spikes",
    "estimate_noise_variance",
    "marchenko_pastur_pdf",
    "mp_edges",
    "mp_median",
    "spiked_eigenvalue_limit",
]

_GRID = 2049


def _check_mp(ratio, sigma2, *, positive_sigma2=False):
    """Eager checks (no-ops on tracers): ``γ > 0``; ``σ² >= 0`` (``> 0`` where the formula divides by it)."""
    check_positive(ratio, "ratio (γ = p/n)")
    check_positive(sigma2, "sigma2", allow_zero=not positive_sigma2)


def mp_edges(ratio, sigma2=1.0):
    """Bulk edges ``(λ₋, λ₊) = σ² (1 ∓ √γ)²`` of the Marchenko–Pastur law.

    Args:
      ratio: aspect ratio ``γ = p/n > 0`` (scalar or array; concrete non-positive values raise).
      sigma2: noise variance ``σ² >= 0``.

    Returns:
      ``(lower, upper)``, each of the broadcast shape of ``ratio`` and ``sigma2``.

    Example:
      >>> from eigenkit.linalg import mp_edges
      >>> [float(e) for e in mp_edges(0.25, 1.0)]
      [0.25, 2.25]
    """
    _check_mp(ratio, sigma2)
    r = jnp.sqrt(jnp.asarray(ratio))
    return sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2


def marchenko_pastur_pdf(x, ratio, sigma2=1.0):
    """Marchenko–Pastur density ``√((λ₊ − x)(x − λ₋)) / (2π σ² γ x)`` on ``[λ₋, λ₊]``, 0 outside.

    For ``γ <= 1`` it integrates to 1; for ``γ > 1`` the continuous part integrates to ``1/γ`` (the rest is an
    atom at 0, not represented).

    Args:
      x: ``(...)`` evaluation points (floating).
      ratio: ``γ = p/n > 0``.
      sigma2: noise variance ``σ²``.

    Returns:
      ``(...)`` density values, dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import marchenko_pastur_pdf
      >>> x = jnp.linspace(0.0, 3.0, 30001)
      >>> round(float(jnp.sum(marchenko_pastur_pdf(x, 0.25)) * (x[1] - x[0])), 3)
      1.0
    """
    x = check_array(x, "x", kind="floating")
    _check_mp(ratio, sigma2, positive_sigma2=True)
    lo, hi = mp_edges(ratio, sigma2)
    inside = (x > lo) & (x < hi)
    xs = jnp.where(inside, x, (lo + hi) / 2)
    val = jnp.sqrt(jnp.maximum((hi - xs) * (xs - lo), 0)) / (2 * jnp.pi * sigma2 * ratio * xs)
    return jnp.where(inside, val, 0).astype(x.dtype)


def _mp_cdf_grid(ratio, dtype):
    # x(θ) = a + (b − a)(1 − cos θ)/2 removes the square-root endpoints: pdf dx = ((b−a)/2)² sin²θ / (2πγx) dθ.
    lo, hi = mp_edges(ratio, 1.0)
    theta = jnp.linspace(0, jnp.pi, _GRID, dtype=dtype)
    x = lo + (hi - lo) * (1 - jnp.cos(theta)) / 2
    dens = ((hi - lo) / 2) ** 2 * jnp.sin(theta) ** 2 / (2 * jnp.pi * ratio * jnp.maximum(x, jnp.finfo(dtype).tiny))
    dens = dens.astype(dtype)
    step = theta[1] - theta[0]
    cdf = jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum((dens[1:] + dens[:-1]) / 2) * step])
    return x, cdf / cdf[-1]  # normalised continuous part (for γ > 1: the law of the nonzero eigenvalues)


def mp_median(ratio, sigma2=1.0, *, dtype=jnp.float32):
    """Median of the (continuous part of the) Marchenko–Pastur law, by quadrature on a 2049-point grid.

    Args:
      ratio: ``γ = p/n > 0``.
      sigma2: noise variance ``σ² >= 0``.
      dtype: floating dtype of the quadrature.

    Returns:
      scalar median (``σ²`` times the median for ``σ² = 1``).

    Example:
      >>> from eigenkit.linalg import mp_median
      >>> round(float(mp_median(1e-6)), 3)  # γ → 0: the law concentrates at σ²
      1.0
    """
    _check_mp(ratio, sigma2)
    x, cdf = _mp_cdf_grid(jnp.asarray(ratio, dtype), dtype)
    return sigma2 * jnp.interp(jnp.asarray(0.5, dtype), cdf, x)


class NoiseEstimator(enum.Enum):
    """``MEDIAN``: ``σ̂² = median(λ) / median(MP_γ)`` over the ``min(n, p)`` largest eigenvalues (robust to a few
    spikes: each spike shifts the median by one rank; cf. Gavish & Donoho 2014 for the singular-value analogue)."""

    MEDIAN = "median"


def estimate_noise_variance(eigvals, n: int, p: int, *, method: NoiseEstimator = NoiseEstimator.MEDIAN):
    """Estimate the bulk noise variance ``σ²`` from sample-covariance eigenvalues.

    Args:
      eigvals: ``(r,)`` eigenvalues of ``S = EᵀE/n`` in any order (``r = p``, or ``r = min(n, p)`` nonzero ones).
      n: static number of samples.
      p: static dimension.
      method: :class:`NoiseEstimator`.

    Returns:
      ``()`` estimate ``σ̂²``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import estimate_noise_variance
      >>> e = 1.5 * jax.random.normal(jax.random.key(0), (4000, 100))  # pure noise, σ² = 2.25
      >>> lam = jnp.linalg.eigvalsh(e.T @ e / 4000)
      >>> bool(abs(float(estimate_noise_variance(lam, 4000, 100)) - 2.25) < 0.1)
      True
    """
    eigvals = check_array(eigvals, "eigvals", ndim=1, kind="floating")
    check_nonempty(eigvals, "eigvals")
    n = check_rank_arg(n, "n", upper=1 << 62, upper_name="2**62")
    p = check_rank_arg(p, "p", upper=1 << 62, upper_name="2**62")
    if not isinstance(method, NoiseEstimator):
        raise TypeError(f"method must be a NoiseEstimator member, got {method!r}")
    r = min(n, p, eigvals.shape[0])
    top = jnp.sort(eigvals)[::-1][:r]
    return jnp.median(top) / mp_median(p / n, dtype=eigvals.dtype)


def bbp_threshold(ratio, sigma2=1.0):
    """Population-eigenvalue detection threshold ``σ² (1 + √γ)`` (spike strength ``ℓ > σ²√γ``; Baik, Ben Arous &
    Péché 2005).

    Args:
      ratio: ``γ = p/n > 0``.
      sigma2: noise variance ``σ² >= 0``.

    Returns:
      the threshold, broadcast shape of the inputs.

    Example:
      >>> from eigenkit.linalg import bbp_threshold
      >>> float(bbp_threshold(0.25, 2.0))
      3.0
    """
    _check_mp(ratio, sigma2)
    return sigma2 * (1 + jnp.sqrt(jnp.asarray(ratio)))


def spiked_eigenvalue_limit(population, ratio, sigma2=1.0):
    """Limit of the sample eigenvalue of a population spike ``population = σ² + ℓ``:
    ``(σ²+ℓ)(1 + γσ²/ℓ)`` above the BBP threshold, the bulk edge ``σ²(1+√γ)²`` below it (Baik & Silverstein 2006).

    Args:
      population: population eigenvalue(s) ``σ² + ℓ``.
      ratio: ``γ = p/n > 0``.
      sigma2: noise variance ``σ² >= 0``.

    Returns:
      limiting sample eigenvalue(s), broadcast shape of the inputs.

    Example:
      >>> from eigenkit.linalg import spiked_eigenvalue_limit
      >>> [round(float(spiked_eigenvalue_limit(x, 0.25)), 4) for x in (5.0, 1.2)]  # above / below threshold
      [5.3125, 2.25]
    """
    _check_mp(ratio, sigma2)
    ell = population - sigma2
    above = ell > sigma2 * jnp.sqrt(jnp.asarray(ratio))
    safe = jnp.where(above, ell, 1)
    return jnp.where(above, population * (1 + ratio * sigma2 / safe), mp_edges(ratio, sigma2)[1])


class SpikeDetection(NamedTuple):
    """Result of :func:`detect_spikes`.

    Attributes:
      mask: ``(r,)`` bool, aligned with the input eigenvalues: True for a detected spike.
      count: ``()`` int32 number of detected spikes (``<= max_rank``).
      sigma2: ``()`` noise variance used (given or estimated).
      threshold: ``()`` eigenvalue threshold used.
    """

    mask: jax.Array
    count: jax.Array
    sigma2: jax.Array
    threshold: jax.Array


def detect_spikes(
    eigvals,
    n: int,
    p: int,
    *,
    sigma2=None,
    tw_margin: float = 3.0,
    max_rank: int | None = None,
) -> SpikeDetection:
    """Mark sample-covariance eigenvalues above the MP bulk edge (spikes past the BBP transition).

    Threshold (Johnstone 2001 Tracy–Widom centring/scaling for the largest noise eigenvalue of ``S = EᵀE/n``):
    ``τ = σ² [ (√n + √p)² + s · (√n + √p)(1/√n + 1/√p)^{1/3} ] / n`` with ``s = tw_margin``; ``s = 0`` is the
    asymptotic edge ``σ²(1+√γ)²``. TW₁ quantiles: 0.95 → 0.98, 0.99 → 2.02; the default 3.0 makes false alarms in
    pure noise rare. Static output size: a mask over the input plus at most ``max_rank`` True entries (the largest
    eigenvalues), so it runs under ``jit`` (EigenShield: fixed maximum rank + column mask).

    Args:
      eigvals: ``(r,)`` eigenvalues of ``S`` (any order).
      n: static number of samples.
      p: static dimension.
      sigma2: noise variance; estimated with :func:`estimate_noise_variance` if None.
      tw_margin: static Tracy–Widom margin ``s``.
      max_rank: static cap on the number of spikes (default: no cap).

    Returns:
      :class:`SpikeDetection`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import detect_spikes
      >>> e = jax.random.normal(jax.random.key(0), (400, 50))
      >>> e = e.at[:, 0].multiply(4.0)  # one planted spike (population variance 16)
      >>> det = detect_spikes(jnp.linalg.eigvalsh(e.T @ e / 400), 400, 50)
      >>> int(det.count)
      1
    """
    eigvals = check_array(eigvals, "eigvals", ndim=1, kind="floating")
    check_nonempty(eigvals, "eigvals")
    n = check_rank_arg(n, "n", upper=1 << 62, upper_name="2**62")
    p = check_rank_arg(p, "p", upper=1 << 62, upper_name="2**62")
    if sigma2 is not None:
        check_positive(sigma2, "sigma2")
    r = eigvals.shape[0]
    if max_rank is not None:
        max_rank = check_rank_arg(max_rank, "max_rank", lower=0, upper=r, upper_name="len(eigvals)")
    dt = eigvals.dtype
    s2 = estimate_noise_variance(eigvals, n, p) if sigma2 is None else jnp.asarray(sigma2, dt)
    sn, sp = float(np.sqrt(n)), float(np.sqrt(p))
    tau = s2 * ((sn + sp) ** 2 + tw_margin * (sn + sp) * (1 / sn + 1 / sp) ** (1 / 3)) / n
    mask = eigvals > tau
    if max_rank is not None:
        rank = jnp.argsort(jnp.argsort(-eigvals))
        mask = mask & (rank < max_rank)
    return SpikeDetection(mask, jnp.sum(mask, dtype=jnp.int32), s2, jnp.asarray(tau, dt))
