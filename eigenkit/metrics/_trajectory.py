"""Multi-modal trajectory forecasting metrics: best-of-S ADE / FDE per agent, and masked means over padded scenes.

The ETH/UCY protocol (Social-GAN, Gupta et al. CVPR 2018; EigenTrajectory ``utils/metrics.py``
``compute_batch_ade`` / ``compute_batch_fde``): a model outputs ``S`` (20) futures per agent; ADE is the smallest
over samples of the time-mean Euclidean error, FDE the smallest over samples of the final-step error — two
**independent** minima (the sample that attains the best ADE need not attain the best FDE). Reported numbers are the
means over all agents of a split (not over scenes).

These are JAX functions (``jit`` / ``vmap`` / ``grad``-safe, dtypes follow the inputs), unlike the host-side NumPy
metrics beside them, because training losses reuse them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["best_of_ade_fde", "displacement_errors", "masked_mean"]


def _safe_norm(v: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis with a finite gradient at 0 (the double-``where`` trick); NaN propagates."""
    sq = jnp.sum(v * v, axis=-1)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1)), sq)  # sq: 0 at 0 (gradient 0), NaN stays NaN


def displacement_errors(pred: Float[Array, "... s t d"], gt: Float[Array, "... t d"]) -> Float[Array, "... s t"]:
    """``‖pred[..., s, t, :] − gt[..., t, :]‖₂`` for every sample ``s`` and step ``t``.

    Args:
      pred: ``(..., S, T, d)`` sampled futures (d = 2 for positions).
      gt: ``(..., T, d)`` the true future, same leading shape.

    Returns:
      ``(..., S, T)`` errors (gradient 0, not NaN, where a prediction equals the truth).
    """
    pred = check_array(pred, "pred", min_ndim=3, kind="floating")
    gt = check_array(gt, "gt", min_ndim=2, kind="floating")
    if pred.shape[:-3] + pred.shape[-2:] != gt.shape:
        raise ValueError(f"pred must have shape (..., S, T, d) and gt (..., T, d) with the same '...', T, d; got "
                         f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)}")
    return _safe_norm(pred - gt[..., None, :, :])


def best_of_ade_fde(pred: Float[Array, "... s t d"],
                    gt: Float[Array, "... t d"]) -> tuple[Float[Array, " ..."], Float[Array, " ..."]]:
    """Best-of-S ADE and FDE per agent (EigenTrajectory ``compute_batch_ade`` / ``compute_batch_fde``).

    ``ADE = min_s mean_t ‖Ŷ_{s,t} − Y_t‖₂``, ``FDE = min_s ‖Ŷ_{s,T} − Y_T‖₂``: the two minima are taken
    independently.

    Args:
      pred: ``(..., S, T, d)`` sampled futures.
      gt: ``(..., T, d)`` the true future.

    Returns:
      ``(ade, fde)``, each ``(...)`` (one value per agent).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.metrics import best_of_ade_fde
      >>> gt = jnp.zeros((1, 3, 2))                                  # one agent, 3 steps, at the origin
      >>> pred = jnp.stack([jnp.ones((3, 2)), jnp.zeros((3, 2))])[None]  # two samples: off by (1, 1), exact
      >>> ade, fde = best_of_ade_fde(pred, gt)
      >>> ade.tolist(), fde.tolist()
      ([0.0], [0.0])
    """
    err = displacement_errors(pred, gt)
    return jnp.min(jnp.mean(err, axis=-1), axis=-1), jnp.min(err[..., -1], axis=-1)


def masked_mean(values: Float[Array, " ..."], mask: Bool[Array, " ..."] | None = None) -> Float[Array, ""]:
    """Mean of ``values`` over the entries where ``mask`` is True (all entries if ``mask`` is None).

    Padded agents (``mask`` False) contribute nothing, not even NaN/Inf (they are selected out with ``where``, also in
    the gradient). An all-False mask gives 0.

    Args:
      values: per-agent values, e.g. ``(num_windows, max_agents)`` from a ``vmap`` over padded scenes.
      mask: bool, same shape (:func:`eigenkit.data.pad_windows`).

    Returns:
      A scalar in ``values``' dtype.
    """
    values = check_array(values, "values", kind="floating")
    if mask is None:
        return jnp.mean(values)
    mask = check_array(mask, "mask", kind="bool")
    if mask.shape != values.shape:
        raise ValueError(f"mask must have the shape of values {tuple(values.shape)}, got {tuple(mask.shape)}")
    total = jnp.sum(jnp.where(mask, values, jnp.zeros((), values.dtype)))
    count = jnp.sum(mask).astype(values.dtype)
    return total / jnp.maximum(count, jnp.ones((), values.dtype))
