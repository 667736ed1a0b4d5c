"""EigenShield calibration: spectrum, noise level, Marchenko–Pastur bulk edge, spikes, robustness-based
nonconformity scores, conformal threshold, causal subspace (Darabi et al. 2025, arXiv:2502.14976; abstract steps
1–4, the exact forms reconstructed as stated in the package docstring).

Cost: ``O(n d²)`` for the covariance and ``O(d³)`` for its ``eigh``, each ``(1 + n_bootstrap)`` times.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from eigenkit import linalg as la
from eigenkit._validate import check_array, check_key, check_positive, check_rank_arg
from eigenkit.methods.eigenshield._conformal import _check_alpha, conformal_quantile
from eigenkit.methods.eigenshield._state import EigenShieldState


def _check_embeddings(embeddings) -> jax.Array:
    e = check_array(embeddings, "embeddings", ndim=2, kind="floating")
    n, d = e.shape
    if n < 2:
        raise ValueError(f"embeddings must have at least 2 rows (samples) to centre, got shape ({n}, {d})")
    if d < 1:
        raise ValueError(f"embeddings must have at least 1 column (dimension), got shape ({n}, {d})")
    return e


def _check_static(n_bootstrap, noise_scale) -> int:
    n_bootstrap = check_rank_arg(n_bootstrap, "n_bootstrap", upper=1 << 30, upper_name="2**30")
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, int | float) or noise_scale < 0:
        raise ValueError(f"noise_scale must be a Python float >= 0 (static), got {noise_scale!r}")
    return n_bootstrap


def _spectrum(e: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``μ``, eigenvalues (descending) and eigenvectors (columns) of ``S = (E − μ)ᵀ(E − μ)/(n − 1)``."""
    mu = jnp.mean(e, axis=0)
    xc = e - mu
    return mu, *_eigh_desc(xc.T @ xc / (e.shape[0] - 1))


def _eigh_desc(cov):
    w, v = jnp.linalg.eigh((cov + cov.T) / 2)
    return w[::-1], v[:, ::-1]


def _near_centred_spectrum(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues (descending) and eigenvectors of the covariance of rows ``x`` whose mean ``m`` is already near 0
    (a resample of centred data): ``S = (XᵀX − n m mᵀ)/(n − 1)`` — the same matrix as centring ``x`` first, without
    the extra pass over ``x`` (an n × d subtraction costs half the Gram on CPU); ``m`` is O(σ/√n) here, so the
    rank-one correction loses nothing to cancellation."""
    n = x.shape[0]
    m = jnp.mean(x, axis=0)
    return _eigh_desc((x.T @ x - n * jnp.outer(m, m)) / (n - 1))


def bootstrap_indices(key: jax.Array, n: int, n_bootstrap: int) -> Int[Array, "b n"]:
    """The row resamples (with replacement) that :func:`robustness_scores` draws from ``key``.

    Resample ``b`` uses ``jax.random.split(jax.random.split(key, n_bootstrap)[b])[0]``; exposed so that a reference
    implementation can be fed the very same resamples.

    Args:
      key: ``jax.random.key``.
      n: static number of rows.
      n_bootstrap: static number of resamples ``B``.

    Returns:
      ``(B, n)`` int32 row indices in ``[0, n)``.

    Example:
      >>> import jax
      >>> from eigenkit.methods.eigenshield import bootstrap_indices
      >>> bootstrap_indices(jax.random.key(0), 5, 3).shape
      (3, 5)
    """
    keys = jax.random.split(check_key(key), n_bootstrap)
    return jax.vmap(lambda k: _resample(k, n))(keys)


def _resample(k, n):
    return jax.random.randint(jax.random.split(k)[0], (n,), 0, n, dtype=jnp.int32)


def robustness_scores(
    embeddings: Float[Array, "n d"],
    basis: Float[Array, "d r"],
    *,
    key: jax.Array,
    sigma2,
    n_bootstrap: int = 20,
    noise_scale: float = 0.0,
    tw_margin: float = 3.0,
) -> Float[Array, " r"]:
    """Robustness-based nonconformity score (RbNS) of each column of ``basis`` — **reconstructed** form.

    ``RbNS_i = 1 − (1/B) Σ_b ‖P̂_b u_i‖²``, where ``P̂_b`` is the orthogonal projector on the spikes detected (same
    ``σ²`` and Tracy–Widom margin as the full fit, at most ``r`` of them) in the covariance of resample ``b``: the
    rows of ``embeddings`` drawn with replacement (:func:`bootstrap_indices`), optionally plus i.i.d. Gaussian noise of
    standard deviation ``noise_scale · σ`` (then the noise level used for detection is ``σ²(1 + noise_scale²)``).
    ``RbNS ∈ [0, 1]``: 0 for a direction that stays inside the detected signal subspace of every perturbed
    recomputation, near 1 for one that leaves it. The score is basis invariant inside the spike subspace (rotating
    degenerate spikes does not change ``‖P̂_b u‖``). For a spike of strength ``ℓ`` the large-``n`` value is about
    ``1 − (1 − γσ⁴/ℓ²)/(1 + γσ²/ℓ)`` (Paul 2007 eigenvector alignment), so spikes just past the BBP threshold score
    high and strong ones near 0.

    Args:
      embeddings: ``(n, d)`` calibration embeddings (uncentred; each resample is re-centred on its own mean).
      basis: ``(d, r)`` orthonormal directions to score (EigenShield: the leading eigenvectors of the full fit).
      key: ``jax.random.key`` for the resamples (and the noise).
      sigma2: noise variance ``σ² > 0`` (scalar, may be traced).
      n_bootstrap: static number of resamples ``B >= 1``.
      noise_scale: static noise level relative to ``σ`` (``0``: plain bootstrap).
      tw_margin: Tracy–Widom margin of the spike threshold (:func:`eigenkit.linalg.detect_spikes`).

    Returns:
      ``(r,)`` scores, dtype of ``embeddings``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import robustness_scores
      >>> e = jax.random.normal(jax.random.key(0), (400, 10)).at[:, 0].multiply(6.0)
      >>> s = robustness_scores(e, jnp.eye(10)[:, :2], key=jax.random.key(1), sigma2=1.0, n_bootstrap=8)
      >>> bool(s[0] < 0.05), bool(s[1] > 0.9)  # the planted spike is stable; a noise direction is not a spike
      (True, True)
    """
    e = _check_embeddings(embeddings)
    n, d = e.shape
    basis = check_array(basis, "basis", ndim=2, kind="floating")
    if basis.shape[0] != d:
        raise ValueError(f"basis must have shape (d, r) = ({d}, r) to match embeddings, got {basis.shape}")
    if basis.dtype != e.dtype:
        raise TypeError(f"basis must have the dtype of embeddings ({e.dtype}), got {basis.dtype}")
    n_bootstrap = _check_static(n_bootstrap, noise_scale)
    check_positive(sigma2, "sigma2")
    r = basis.shape[1]
    if r == 0:
        return jnp.zeros((0,), e.dtype)
    s2 = jnp.asarray(sigma2, e.dtype)
    s2_detect = s2 * (1 + noise_scale**2)
    keys = jax.random.split(check_key(key), n_bootstrap)
    e0 = e - jnp.mean(e, axis=0)  # centred once; each resample's own mean is removed by the rank-one correction

    def one(k):
        xb = e0[_resample(k, n)]
        if noise_scale:
            noise = jax.random.normal(jax.random.split(k)[1], xb.shape, e.dtype)
            xb = xb + (noise_scale * jnp.sqrt(s2)) * noise
        wb, vb = _near_centred_spectrum(xb)
        det = la.detect_spikes(wb, n - 1, d, sigma2=s2_detect, tw_margin=tw_margin, max_rank=r)
        overlap = (vb[:, :r].T @ basis) ** 2  # (r_b, r): ⟨u_j^(b), u_i⟩²
        return jnp.sum(jnp.where(det.mask[:r, None], overlap, 0), axis=0)

    kept = jax.lax.map(one, keys)  # (B, r) = ‖P̂_b u_i‖²
    return jnp.clip(1 - jnp.mean(kept, axis=0), 0, 1)


def fit(
    embeddings: Float[Array, "n d"],
    max_rank: int,
    *,
    key: jax.Array,
    alpha=0.1,
    n_bootstrap: int = 20,
    noise_scale: float = 0.0,
    sigma2=None,
    tw_margin: float = 3.0,
) -> EigenShieldState:
    """Calibrate EigenShield on clean embeddings ``E`` (``n × d``): the causal subspace and its diagnostics.

    1. Centre and diagonalise: ``μ = mean(E)``, ``S = (E − μ)ᵀ(E − μ)/(n − 1) = Σ λ_i u_i u_iᵀ`` (``λ`` descending).
       Paper: RMT on the representations' covariance (abstract, step 1). ``n − 1`` (centred data): the bulk follows
       Marchenko–Pastur with ``γ = d/(n − 1)``.
    2. Noise level ``σ²`` (**reconstructed**: the median of the ``min(n − 1, d)`` largest ``λ`` over the MP median,
       :func:`eigenkit.linalg.estimate_noise_variance`; or given) and bulk edge ``λ₊ = σ²(1 + √γ)²``.
    3. Spikes ``𝒮 = {i <= max_rank : λ_i > λ₊ + Tracy–Widom margin}`` (spiked covariance model, abstract step 2;
       BBP: detectable iff ``ℓ > σ²√γ``; :func:`eigenkit.linalg.detect_spikes`).
    4. ``RbNS_i`` of each leading direction (:func:`robustness_scores`, **reconstructed**: bootstrap / noise-injected
       subspace stability; abstract step 3).
    5. Threshold ``τ`` = conformal ``(1 − α)`` quantile of the spikes' scores (:func:`conformal_quantile`,
       **reconstructed** form of the "quantile-based thresholding"); causal set ``𝒞 = {i ∈ 𝒮 : RbNS_i <= τ}``
       (abstract step 3). With ``k`` spikes, ``k − ⌈(1 − α)(k + 1)⌉`` of them are dropped (none when ``k < 1/α − 1``);
       a smaller ``α`` keeps more.

    Under ``jit``: ``max_rank``, ``n_bootstrap``, ``noise_scale`` static; ``alpha``, ``sigma2`` may be traced.

    Args:
      embeddings: ``(n, d)`` clean calibration embeddings, ``n >= 2`` (``n < d`` allowed).
      max_rank: static maximum causal rank ``r``, ``0 <= r <= d``: the basis keeps the ``r`` leading eigenvectors
        and spikes beyond them are not considered.
      key: ``jax.random.key`` for the resamples of step 4.
      alpha: miscoverage level of the quantile, ``0 < α < 1``.
      n_bootstrap: static number of resamples ``B`` for the scores.
      noise_scale: static Gaussian noise (relative to ``σ``) injected into each resample (0: bootstrap only).
      sigma2: known noise variance ``σ² > 0`` (default: estimated, step 2).
      tw_margin: Tracy–Widom margin of the spike threshold (0: the asymptotic edge ``λ₊``).

    Returns:
      :class:`EigenShieldState` (dtype of ``embeddings``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods import eigenshield
      >>> e = jax.random.normal(jax.random.key(0), (500, 20))
      >>> e = e.at[:, :3].multiply(jnp.array([8.0, 6.0, 4.0]))  # three planted spikes
      >>> st = eigenshield.fit(e, 5, key=jax.random.key(1), n_bootstrap=8)
      >>> int(st.spike_mask.sum()), int(st.mask.sum())  # 3 spikes < 1/α − 1: all causal
      (3, 3)
      >>> eigenshield.transform(st, e[:4]).shape
      (4, 20)
    """
    e = _check_embeddings(embeddings)
    n, d = e.shape
    max_rank = check_rank_arg(max_rank, "max_rank", lower=0, upper=d, upper_name="d (embedding dimension)")
    key = check_key(key)
    _check_alpha(alpha)
    n_bootstrap = _check_static(n_bootstrap, noise_scale)
    if sigma2 is not None:
        check_positive(sigma2, "sigma2")
    dt = e.dtype
    mu, w, v = _spectrum(e)
    det = la.detect_spikes(w, n - 1, d, sigma2=sigma2, tw_margin=tw_margin, max_rank=max_rank)
    s2 = det.sigma2.astype(dt)
    basis = v[:, :max_rank]
    spikes = det.mask[:max_rank]
    scores = robustness_scores(e, basis, key=key, sigma2=s2, n_bootstrap=n_bootstrap, noise_scale=noise_scale,
                               tw_margin=tw_margin)
    tau = conformal_quantile(scores, alpha, mask=spikes)
    return EigenShieldState(
        mean=mu,
        basis=basis,
        mask=spikes & (scores <= tau),
        spike_mask=spikes,
        scores=scores,
        eigvals=w,
        sigma2=s2,
        bulk_edge=jnp.asarray(la.mp_edges(d / (n - 1), s2)[1], dt),
        spike_threshold=det.threshold.astype(dt),
        score_threshold=tau,
        n_samples=jnp.asarray(n, jnp.int32),
    )
