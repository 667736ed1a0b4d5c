"""EigenTrajectory's backbone input, forecast and training loss (official ``EigenTrajectory/model.py``
``EigenTrajectory.forward`` without the backbone call, and ``utils/trainer.py``'s loss sum).

Loss, three **independent** minima over the ``S`` samples of each agent (the sample nearest in coefficients need
not be the one nearest in ADE or FDE)::

    L_ET  = mean_n min_s ‖C[n, s] − C_gt[n]‖₂            (C_gt: projection of the true future, no gradient)
    L_ADE = mean_n min_s mean_t ‖Ŷ[n, s, t] − Y[n, t]‖₂
    L_FDE = mean_n min_s ‖Ŷ[n, s, T_p] − Y[n, T_p]‖₂
    L = L_ET + L_ADE + L_FDE,   NaN → 0 (the trainer's ``loss[torch.isnan(loss)] = 0``)

Means run over the agents of one scene (official: one scene per forward in the "sequenced" trainers); with padded
scenes an agent ``mask`` drops the padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array
from eigenkit.methods.eigentrajectory._anchor import ETAnchors, refine_anchors
from eigenkit.methods.eigentrajectory._descriptor import ETDescriptor, et_project, et_reconstruct
from eigenkit.metrics import best_of_ade_fde, masked_mean

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["backbone_inputs", "eigentrajectory_loss", "forecast"]


def _check_mask(mask, shape, name: str = "mask"):
    if mask is None:
        return None
    mask = check_array(mask, name, kind="bool")
    if mask.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)} (one entry per agent), got {tuple(mask.shape)}")
    return mask


def backbone_inputs(obs: Float[Array, "n to 2"], descriptor: ETDescriptor,
                    mask: Bool[Array, " n"] | None = None) -> Float[Array, "n k+2"]:
    """The backbone's per-agent input ``[C_obs; obs_ori]`` of one scene (official ``EigenTrajectory.forward``:
    ``C_obs`` and ``obs_ori`` = last observed position minus the scene's mean last position).

    Args:
      obs: ``(n, T_o, 2)`` observed positions of one scene's agents.
      descriptor: the fitted descriptor.
      mask: optional bool ``(n,)``, True for real agents: the scene mean runs over them only.

    Returns:
      ``(n, k + 2)``: the ``k`` ET coefficients, then the centred ``(x, y)`` (official layout: its transpose).
    """
    obs = check_array(obs, "obs", ndim=3, shape=(None, None, 2), kind="floating")
    mask = _check_mask(mask, obs.shape[:1])
    c_obs, _, params, _ = et_project(obs, descriptor)
    return jnp.concatenate([c_obs, scene_offsets(params.origin, mask)], axis=-1)


def scene_offsets(last: Float[Array, "n 2"], mask: Bool[Array, " n"] | None = None) -> Float[Array, "n 2"]:
    """Each agent's last position minus the scene's mean last position (official ``obs_ori``), the mean over the
    real agents only when ``mask`` is given (an all-padding scene gives the positions themselves)."""
    if mask is None:
        centre = jnp.mean(last, axis=0)
    else:
        w = mask.astype(last.dtype)[:, None]
        centre = jnp.sum(last * w, axis=0) / jnp.maximum(jnp.sum(w), jnp.ones((), last.dtype))
    return last - centre


def forecast(obs: Float[Array, "... to 2"], residual: Float[Array, "... s k"], descriptor: ETDescriptor,
             anchors: ETAnchors) -> tuple[Float[Array, "... s tp 2"], Float[Array, "... s k"]]:
    """``S`` futures per agent from the backbone's coefficient residuals: anchor refinement, then reconstruction
    and denormalisation in each agent's group (official ``EigenTrajectory.forward`` after the hook).

    Args:
      obs: ``(..., T_o, 2)`` observed positions (they set each agent's normalisation and group).
      residual: ``(..., S, k)`` the backbone output ``C_pred`` per agent.
      descriptor, anchors: the fitted constants.

    Returns:
      ``(futures, coefficients)``: ``(..., S, T_p, 2)`` world-frame positions and the refined ``(..., S, k)``.
    """
    _, _, params, moving = et_project(obs, descriptor)
    c = refine_anchors(residual, anchors, moving)
    return et_reconstruct(c, descriptor, params, moving), c


def eigentrajectory_loss(c: Float[Array, "n s k"], c_gt: Float[Array, "n k"], futures: Float[Array, "n s tp 2"],
                         gt: Float[Array, "n tp 2"], mask: Bool[Array, " n"] | None = None,
                         ) -> tuple[Float[Array, ""], dict[str, jax.Array]]:
    """``L_ET + L_ADE + L_FDE`` with three independent minima over samples (official ``loss_eigentraj``,
    ``loss_euclidean_ade``, ``loss_euclidean_fde`` and the trainer's sum with NaN → 0).

    Args:
      c: ``(n, S, k)`` refined coefficients (:func:`forecast`).
      c_gt: ``(n, k)`` coefficients of the true future (:func:`et_project` with ``pred``); gradients are stopped.
      futures: ``(n, S, T_p, 2)`` reconstructed futures.
      gt: ``(n, T_p, 2)`` true futures.
      mask: optional bool ``(n,)``: means over the real agents only (padded scenes).

    Returns:
      ``(loss, {"et": L_ET, "ade": L_ADE, "fde": L_FDE})``, scalars in ``c``'s dtype. ``loss`` is 0 when the sum
      is NaN (each term is still reported as computed).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigentrajectory import eigentrajectory_loss
      >>> c = jnp.array([[[0.0], [3.0]]])               # one agent, 2 samples, k = 1; sample 0 is right in C
      >>> fut = jnp.array([[[[5.0, 0.0]], [[0.0, 0.0]]]])  # ... but sample 1 is right in space
      >>> loss, parts = eigentrajectory_loss(c, jnp.zeros((1, 1)), fut, jnp.zeros((1, 1, 2)))
      >>> float(loss), float(parts["et"]), float(parts["ade"])
      (0.0, 0.0, 0.0)
    """
    c = check_array(c, "c", ndim=3, kind="floating")
    c_gt = check_array(c_gt, "c_gt", ndim=2, shape=(c.shape[0], c.shape[2]), kind="floating")
    futures = check_array(futures, "futures", ndim=4, shape=(c.shape[0], c.shape[1], None, 2), kind="floating")
    gt = check_array(gt, "gt", ndim=3, shape=(c.shape[0], futures.shape[2], 2), kind="floating")
    mask = _check_mask(mask, c.shape[:1])
    if mask is not None:  # padded agents may hold anything (NaN, Inf): zero them so no gradient reaches them
        c, c_gt, futures, gt = (jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x,
                                          jnp.zeros((), x.dtype)) for x in (c, c_gt, futures, gt))
    diff = c - jax.lax.stop_gradient(c_gt)[:, None, :]
    sq = jnp.sum(diff * diff, axis=-1)
    pos = sq > 0
    err_c = jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1)), sq)  # finite gradient at an exact match; NaN stays
    l_et = masked_mean(jnp.min(err_c, axis=-1), mask)
    ade, fde = best_of_ade_fde(futures, gt)
    l_ade, l_fde = masked_mean(ade, mask), masked_mean(fde, mask)
    total = l_et + l_ade + l_fde
    total = jnp.where(jnp.isnan(total), jnp.zeros((), total.dtype), total)
    return total, {"et": l_et, "ade": l_ade, "fde": l_fde}
