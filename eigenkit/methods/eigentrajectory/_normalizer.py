"""Trajectory normalisation of EigenTrajectory (official ``EigenTrajectory/normalizer.py``, ``TrajNorm``) and the
moving / static split of ``EigenTrajectory/model.py``.

Parameters come from the **observation** only (its last three steps): origin ``o = x_{T_o}``; heading
``θ = atan2(x_{T_o} − x_{T_o−2})``; rotation ``R = [[cos θ, −sin θ], [sin θ, cos θ]]`` applied to **row vectors**
(``p ↦ p R``, a rotation by ``−θ``: the last-step heading goes to +x); scale ``s = 2 / ‖x_{T_o} − x_{T_o−2}‖``
(one over the per-step speed, so the normalised last-step speed is 1). ``normalize(p) = ((p − o) R) s``;
``denormalize`` undoes the three steps in reverse order.

An agent is **moving** iff ``‖x_{T_o} − x_{T_o−2}‖ / 2 > static_dist``. Moving agents use origin + rotation + scale
(the official ``ET_m_descriptor``), static agents origin + rotation only (``ET_s_descriptor``, ``norm_sca=False``).
The official model splits the agents by boolean indexing (dynamic shapes); here both groups are normalised with one
formula, the scale being ``where(moving, s, 1)`` (port decision of ``shared/methods/eigentrajectory.md`` §3), which
is ``jit``/``vmap``-safe and gives the same numbers.

Degenerate inputs (a deliberate, documented difference): a zero last-step displacement gives heading 0 (as
``atan2(0, 0)`` in torch) and scale 1 (official: ``inf``, then NaN). Such an agent is static under any
``static_dist >= 0``, where the official code never scales either; so zero-padded agents stay finite.

Shapes: functions take ``(..., T, 2)`` trajectories (one agent per leading index: elementwise over agents).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["TrajNormParams", "denormalize", "et_norm_params", "is_moving", "normalize", "traj_norm_params"]


class TrajNormParams(NamedTuple):
    """Per-agent normalisation parameters (the official ``TrajNorm.traj_ori / traj_rot / traj_sca``).

    Attributes:
      origin: ``(..., 2)`` the last observed position (zeros when the origin is not normalised).
      rotation: ``(..., 2, 2)`` ``R`` acting on row vectors (identity when rotation is off).
      scale: ``(...)`` ``s`` (ones when scaling is off, and for static agents in :func:`et_norm_params`).
    """

    origin: jax.Array
    rotation: jax.Array
    scale: jax.Array


def _last_step(obs: jax.Array) -> jax.Array:
    return obs[..., -1, :] - obs[..., -3, :]


def _check_obs(obs, name: str = "obs") -> jax.Array:
    obs = check_array(obs, name, min_ndim=2, shape=(None, 2), kind="floating")
    if obs.shape[-2] < 3:
        raise ValueError(f"{name} must have at least 3 observed steps (heading and speed use x_T - x_(T-2)), got "
                         f"shape {tuple(obs.shape)}")
    return obs


def traj_norm_params(obs: Float[Array, "... t 2"], *, origin: bool = True, rotation: bool = True,
                     scale: bool = True) -> TrajNormParams:
    """Normalisation parameters of each agent from its observation (official ``TrajNorm.calculate_params``).

    Args:
      obs: ``(..., T_o, 2)`` observed positions, ``T_o >= 3``.
      origin, rotation, scale: which steps to use (official ``ori``, ``rot``, ``sca``); an unused step gets its
        identity parameter.

    Returns:
      :class:`TrajNormParams` in ``obs``' dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigentrajectory import denormalize, normalize, traj_norm_params
      >>> obs = jnp.array([[[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]]])   # walking along +y, 1 m per step
      >>> p = traj_norm_params(obs)
      >>> z = normalize(obs, p)                                      # heading -> +x, speed 1, ends at 0
      >>> bool(jnp.allclose(z[0, :, 0], jnp.array([-2.0, -1.0, 0.0]), atol=1e-6)), bool(jnp.allclose(z[..., 1], 0,
      ...                                                                                    atol=1e-6))
      (True, True)
      >>> bool(jnp.allclose(denormalize(z, p), obs, atol=1e-6))
      True
    """
    obs = _check_obs(obs)
    dt = obs.dtype
    batch = obs.shape[:-2]
    d = _last_step(obs)
    sq = jnp.sum(d * d, axis=-1)
    pos = sq > 0
    norm = jnp.sqrt(jnp.where(pos, sq, 1))  # finite value and gradient at a zero step
    o = obs[..., -1, :] if origin else jnp.zeros(batch + (2,), dt)
    if rotation:
        # A zero step gets heading 0 (torch's atan2(0, 0)) through a unit +x direction: finite gradient there too.
        safe = jnp.where(pos[..., None], d, jnp.array([1, 0], dt))
        theta = jnp.arctan2(safe[..., 1], safe[..., 0])
        c, s = jnp.cos(theta), jnp.sin(theta)
        rot = jnp.stack([jnp.stack([c, -s], axis=-1), jnp.stack([s, c], axis=-1)], axis=-2)
    else:
        rot = jnp.broadcast_to(jnp.eye(2, dtype=dt), batch + (2, 2))
    sca = jnp.where(pos, 2 / norm, 1) if scale else jnp.ones(batch, dt)
    return TrajNormParams(o, rot, sca.astype(dt))


def normalize(traj: Float[Array, "... t 2"], params: TrajNormParams) -> Float[Array, "... t 2"]:
    """``((p − o) R) · s`` for every step ``p`` of ``traj`` (official ``TrajNorm.normalize``).

    Args:
      traj: ``(..., T, 2)`` positions (observed or future), leading shape that of ``params``.
      params: :func:`traj_norm_params` / :func:`et_norm_params` of the same agents.

    Returns:
      ``(..., T, 2)`` normalised positions.
    """
    traj = check_array(traj, "traj", min_ndim=2, shape=(None, 2), kind="floating")
    return ((traj - params.origin[..., None, :]) @ params.rotation) * params.scale[..., None, None]


def denormalize(traj: Float[Array, "... t 2"], params: TrajNormParams) -> Float[Array, "... t 2"]:
    """``(p / s) Rᵀ + o``: the inverse of :func:`normalize` (official ``TrajNorm.denormalize``)."""
    traj = check_array(traj, "traj", min_ndim=2, shape=(None, 2), kind="floating")
    rt = jnp.swapaxes(params.rotation, -1, -2)
    return (traj / params.scale[..., None, None]) @ rt + params.origin[..., None, :]


def is_moving(obs: Float[Array, "... t 2"], static_dist: float) -> Bool[Array, " ..."]:
    """``‖x_{T_o} − x_{T_o−2}‖ / 2 > static_dist`` (the official model's ``mask``): per-step speed above the
    scene's ``static_dist`` (eth 0.419, hotel 0.353, univ 0.227, zara1 0.338, zara2 0.350 m per step)."""
    obs = _check_obs(obs)
    d = _last_step(obs) / 2
    # The norm itself (not its square) against the threshold cast to obs' dtype, as torch compares.
    return jnp.sqrt(jnp.sum(d * d, axis=-1)) > jnp.asarray(static_dist).astype(obs.dtype)


def et_norm_params(obs: Float[Array, "... t 2"], static_dist: float) -> tuple[TrajNormParams, Bool[Array, " ..."]]:
    """Parameters of both EigenTrajectory groups at once: origin + rotation for all, scale only for moving agents.

    Equal to the official ``ET_m_descriptor`` (moving) and ``ET_s_descriptor`` (static) normalisers, selected per
    agent with ``where`` instead of boolean indexing.

    Returns:
      ``(params, moving)``: :class:`TrajNormParams` (``scale = where(moving, 2/‖Δ‖, 1)``) and bool ``(...)``.
    """
    params = traj_norm_params(obs)
    moving = is_moving(obs, static_dist)
    return params._replace(scale=jnp.where(moving, params.scale, jnp.ones((), params.scale.dtype))), moving


def _np_norm_params(obs: np.ndarray, *, scale: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Host float64 NumPy twin of :func:`traj_norm_params` (origin + rotation, optional scale) for the one-off
    descriptor fit, independent of ``jax_enable_x64``."""
    d = obs[:, -1] - obs[:, -3]
    theta = np.arctan2(d[:, 1], d[:, 0])
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], axis=1), np.stack([s, c], axis=1)], axis=1)
    norm = np.linalg.norm(d, axis=-1)
    sca = np.where(norm > 0, 2 / np.where(norm > 0, norm, 1), 1) if scale else np.ones(len(obs))
    return obs[:, -1], rot, sca


def _np_normalize(traj: np.ndarray, params) -> np.ndarray:
    o, rot, sca = params
    return ((traj - o[:, None]) @ rot) * sca[:, None, None]


def _np_is_moving(obs: np.ndarray, static_dist: float) -> np.ndarray:
    return np.linalg.norm((obs[:, -1] - obs[:, -3]) / 2, axis=-1) > static_dist
