"""Split-conformal quantile threshold (EigenShield's "quantile-based thresholding"; the conformal form is
reconstructed, see the package docstring).

For ``k`` calibration scores ``s_1..s_k`` and a level ``α ∈ (0, 1)``, the threshold is the
``⌈(1 − α)(k + 1)⌉``-th smallest score (``+inf`` if that exceeds ``k``). If a new score ``s`` is exchangeable with the
calibration scores, ``P(s <= τ) >= 1 − α`` (Vovk et al. 2005; Lei et al. 2018, Thm. 2.2 / Angelopoulos & Bates 2023,
Eq. 1), and with no ties ``P(s <= τ) = ⌈(1 − α)(k + 1)⌉ / (k + 1) < 1 − α + 1/(k + 1)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from eigenkit._validate import check_array


def _check_alpha(alpha) -> None:
    if isinstance(alpha, jax.core.Tracer):
        return
    try:
        v = np.asarray(alpha)
    except Exception:  # noqa: BLE001 - abstract values
        return
    if v.ndim != 0:
        raise ValueError(f"alpha must be a scalar, got shape {tuple(v.shape)}")
    if not 0.0 < float(v) < 1.0:
        raise ValueError(f"alpha must satisfy 0 < alpha < 1, got {float(v)}")


def conformal_quantile(
    scores: Float[Array, " m"], alpha, *, mask: Bool[Array, " m"] | None = None
) -> Float[Array, ""]:
    """Conformal ``(1 − α)`` threshold ``τ`` of the calibration scores ``scores[mask]``.

    ``τ = s_(⌈(1−α)(k+1)⌉)`` (order statistic of the ``k = Σ mask`` valid scores), ``+inf`` when
    ``⌈(1−α)(k+1)⌉ > k`` (too few scores for that level; also ``k = 0``). Under ``jit`` ``k`` may be traced (a mask
    over a fixed-size array). The ceiling is taken after shrinking its argument by ``8·eps`` relative so that, e.g.,
    ``(1 − 0.1) · 10`` is 9 and not 10 after round-off.

    Args:
      scores: ``(m,)`` real scores (NaN-free where valid).
      alpha: miscoverage level, ``0 < α < 1`` (may be traced; concrete values are checked).
      mask: ``(m,)`` bool, True for the calibration scores (default: all).

    Returns:
      ``()`` threshold ``τ``, dtype of ``scores``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import conformal_quantile
      >>> s = jnp.arange(1.0, 20.0)  # 19 scores: ⌈0.9 · 20⌉ = 18 → the 18th smallest
      >>> float(conformal_quantile(s, 0.1))
      18.0
      >>> float(conformal_quantile(s[:5], 0.1))  # ⌈0.9 · 6⌉ = 6 > 5 scores
      inf
    """
    scores = check_array(scores, "scores", ndim=1, kind="floating")
    _check_alpha(alpha)
    m = scores.shape[0]
    dt = scores.dtype
    if mask is None:
        mask = jnp.ones((m,), bool)
    else:
        mask = check_array(mask, "mask", ndim=1, kind="bool")
        if mask.shape != scores.shape:
            raise ValueError(f"mask must have shape {scores.shape} to match scores, got {mask.shape}")
    if m == 0:
        return jnp.asarray(jnp.inf, dt)
    k = jnp.sum(mask).astype(dt)
    level = jnp.ceil((1 - jnp.asarray(alpha, dt)) * (k + 1) * (1 - 8 * jnp.finfo(dt).eps))
    ordered = jnp.sort(jnp.where(mask, scores, jnp.inf))
    idx = jnp.clip(level.astype(jnp.int32) - 1, 0, m - 1)
    return jnp.where((level <= k) & (k > 0), ordered[idx], jnp.asarray(jnp.inf, dt))
