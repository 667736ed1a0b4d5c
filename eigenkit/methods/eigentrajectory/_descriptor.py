"""The EigenTrajectory (ET) descriptor: a low-rank SVD basis of normalised trajectories (official
``EigenTrajectory/descriptor.py`` ``ETDescriptor``; the descriptor fit of ``model.py`` ``calculate_parameters`` and
``utils/trainer.py`` ``init_descriptor``).

A trajectory ``(T, 2)`` is flattened row-major to ``vec ∈ R^{2T}`` (``[x_1, y_1, x_2, y_2, …]``, the official
``reshape(-1, 2T)``). For ``N`` normalised trajectories ``M = [vec_1 … vec_N] ∈ R^{2T×N}`` with thin SVD
``M = U Σ Vᵀ``, the descriptor keeps ``U_k`` (the first ``k`` left singular vectors), separately for the observation
(``U_o ∈ R^{2T_o×k}``) and the future (``U_p ∈ R^{2T_p×k}``). Coefficients ``c = U_kᵀ vec`` (:func:`project`) and
``vec ≈ U_k c`` (:func:`reconstruct`).

**Layout:** coefficients are per agent, ``(..., k)`` (the official code stores ``C ∈ R^{k×N}``, the transpose).

**Fit (host, once):** :func:`fit_descriptor` takes the train + val trajectories, adds the y-flip copy
(:func:`augment_trajectories`), splits moving / static agents and runs a float64 NumPy SVD per group (official:
float32 ``torch.linalg.svd``). The bases are frozen constants (NumPy arrays in the input's dtype): keep them out of
the optimiser's params tree. Column signs are arbitrary (they differ between NumPy, JAX and torch); compare
projectors ``U Uᵀ``, reconstructions or singular values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array, check_rank_arg
from eigenkit.methods.eigentrajectory._normalizer import (
    TrajNormParams,
    _np_is_moving,
    _np_norm_params,
    _np_normalize,
    denormalize,
    et_norm_params,
    normalize,
)

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["ETBasis", "ETDescriptor", "augment_trajectories", "et_project", "et_reconstruct", "fit_basis",
           "fit_descriptor", "project", "reconstruct", "truncated_svd"]


class ETBasis(NamedTuple):
    """One group's truncated bases (official ``ETDescriptor.U_obs_trunc / U_pred_trunc``).

    Attributes:
      u_obs: ``(2 T_o, k)`` orthonormal columns, observation basis ``U_o``.
      u_pred: ``(2 T_p, k)`` future basis ``U_p``.
      sv_obs: ``(k,)`` the matching singular values of the observation matrix, descending.
      sv_pred: ``(k,)`` those of the future matrix.
    """

    u_obs: np.ndarray
    u_pred: np.ndarray
    sv_obs: np.ndarray
    sv_pred: np.ndarray


class ETDescriptor(NamedTuple):
    """The two ET descriptors of the model (official ``ET_m_descriptor`` / ``ET_s_descriptor``).

    Attributes:
      moving: :class:`ETBasis` fitted on moving agents (origin + rotation + scale normalisation).
      static: :class:`ETBasis` fitted on static agents (origin + rotation).
      static_dist: the per-step speed threshold (float) that splits them (:func:`is_moving`).
    """

    moving: ETBasis
    static: ETBasis
    static_dist: float


def _host(x, name: str, ndim: int = 3) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim or x.shape[-1] != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a floating (n, T, 2) array, got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN/Inf values")
    return x


def augment_trajectories(obs, pred, *, flip: bool = True, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Data augmentation of the descriptor fit (official ``utils/utils.py`` ``augment_trajectory``).

    ``flip`` appends the mirror copy ``(x, y) ↦ (x, −y)``. The official function is called with ``flip=True,
    reverse=True`` but tests ``if flip … elif reverse``, so the time reversal **never runs**; the default here
    (``reverse=False``) reproduces that. ``reverse=True`` additionally appends the time-reversed copy of every
    trajectory present after the flip (observed part = the first ``T_o`` steps of the reversed whole).

    Args:
      obs: ``(n, T_o, 2)`` observed positions.
      pred: ``(n, T_p, 2)`` future positions.

    Returns:
      ``(obs, pred)`` with ``n · (1 + flip) · (1 + reverse)`` rows, originals first.
    """
    obs, pred = _host(obs, "obs"), _host(pred, "pred")
    if len(obs) != len(pred):
        raise ValueError(f"obs and pred must have the same number of agents, got {len(obs)} and {len(pred)}")
    if flip:
        mirror = np.array([1, -1], obs.dtype)
        obs, pred = np.concatenate([obs, obs * mirror]), np.concatenate([pred, pred * mirror])
    if reverse:
        t_o = obs.shape[1]
        whole = np.concatenate([obs, pred], axis=1)[:, ::-1]
        obs, pred = np.concatenate([obs, whole[:, :t_o]]), np.concatenate([pred, whole[:, t_o:]])
    return obs, pred


def truncated_svd(traj_norm, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``k`` left singular vectors and values of ``M = reshape(traj, n, 2T)ᵀ`` (official
    ``ETDescriptor.truncated_SVD``), computed in float64 with NumPy (host; returned in the input's dtype).

    NumPy rather than :func:`eigenkit.linalg.truncated_svd` on purpose: this one-off fit must run in float64 whether
    or not JAX's x64 mode is on (a documented deviation: the official code takes a float32 ``torch.linalg.svd``; the
    parity test agrees with it to float32 round-off, rtol 1e-4 on σ); the traced projection and reconstruction then
    use the bases in the caller's dtype.

    Args:
      traj_norm: ``(n, T, 2)`` normalised trajectories, ``n >= k``.
      k: rank, ``1 <= k <= min(2T, n)``.

    Returns:
      ``(u, sv)``: ``(2T, k)`` orthonormal columns and ``(k,)`` singular values, descending.
    """
    x = _host(traj_norm, "traj_norm")
    n, t, _ = x.shape
    k = check_rank_arg(k, "k", upper=min(2 * t, n), upper_name="min(2T, n)")
    m = x.reshape(n, 2 * t).astype(np.float64).T
    u, sv, _ = np.linalg.svd(m, full_matrices=False)
    return u[:, :k].astype(x.dtype), sv[:k].astype(x.dtype)


def fit_basis(obs, pred, k: int = 6, *, scale: bool = True) -> ETBasis:
    """One group's bases: normalise (origin + rotation, and scale if ``scale``), then :func:`truncated_svd` of the
    observations and of the futures (official ``ETDescriptor.parameter_initialization``). Host function.

    Args:
      obs: ``(n, T_o, 2)`` observed positions (already augmented, one group).
      pred: ``(n, T_p, 2)`` future positions.
      k: rank.
      scale: normalise the scale (moving group) or not (static group).
    """
    obs, pred = _host(obs, "obs"), _host(pred, "pred")
    if len(obs) != len(pred):
        raise ValueError(f"obs and pred must have the same number of agents, got {len(obs)} and {len(pred)}")
    o64, p64 = obs.astype(np.float64), pred.astype(np.float64)
    params = _np_norm_params(o64, scale=scale)
    u_o, s_o = truncated_svd(_np_normalize(o64, params), k)
    u_p, s_p = truncated_svd(_np_normalize(p64, params), k)
    dt = obs.dtype
    return ETBasis(u_o.astype(dt), u_p.astype(dt), s_o.astype(dt), s_p.astype(dt))


def _split(obs, pred, static_dist: float, flip: bool, reverse: bool):
    obs, pred = augment_trajectories(obs, pred, flip=flip, reverse=reverse)
    moving = _np_is_moving(obs, float(static_dist))  # in obs' dtype, as the official float32 mask and is_moving
    return obs, pred, moving


def fit_descriptor(obs, pred, *, static_dist: float, k: int = 6, flip: bool = True,
                   reverse: bool = False) -> ETDescriptor:
    """Fit the moving and static ET descriptors on training trajectories (official ``init_descriptor`` →
    ``EigenTrajectory.calculate_parameters`` → ``ETDescriptor.parameter_initialization``). Host function
    (boolean indexing and a NumPy float64 SVD); not for ``jit``.

    Args:
      obs: ``(n, T_o, 2)`` observed positions of **train + val** (official), e.g. ``eigenkit.data.ethucy(...).obs``.
      pred: ``(n, T_p, 2)`` their futures.
      static_dist: per-step speed threshold of the scene (config ``static_dist``).
      k: rank (official 6).
      flip, reverse: :func:`augment_trajectories` (official: flip only).

    Returns:
      :class:`ETDescriptor` with bases in ``obs``' dtype.

    Raises:
      ValueError: bad shapes, NaN, or a group with fewer than ``k`` agents.

    The moving / static split is computed in ``obs``' dtype; the SVD always in float64. The official code is float32
    throughout (its loader returns ``torch.float``): pass float32 trajectories to reproduce its split exactly. In
    float64 the split can differ at exact ties of the 4-decimal data: ETH train + val has one such agent (speed
    0.41900000298 from its rounded coordinates, ``static_dist`` 0.419), moving in float64 but static in float32
    (its speed rounds to ``float32(0.419)``), so the float64 moving group has 14458 instead of 14456 agents (with the
    flip copy).

    Example:
      >>> import numpy as np
      >>> from eigenkit.methods.eigentrajectory import fit_descriptor
      >>> rng = np.random.default_rng(0)
      >>> walk = np.cumsum(rng.normal(0.0, 0.3, (200, 20, 2)), axis=1)
      >>> d = fit_descriptor(walk[:, :8], walk[:, 8:], static_dist=0.3, k=4)
      >>> d.moving.u_obs.shape, d.static.u_pred.shape
      ((16, 4), (24, 4))
    """
    obs, pred, moving = _split(obs, pred, static_dist, flip, reverse)
    groups = {}
    for name, sel, scale in (("moving", moving, True), ("static", ~moving, False)):
        n = int(sel.sum())
        if n < k:
            raise ValueError(f"fit_descriptor: the {name} group has {n} agent(s) after augmentation, fewer than "
                             f"k = {k} (static_dist = {static_dist})")
        groups[name] = fit_basis(obs[sel], pred[sel], k, scale=scale)
    return ETDescriptor(groups["moving"], groups["static"], float(static_dist))


def project(traj_norm: Float[Array, "... t 2"], u: Float[Array, "2t k"]) -> Float[Array, "... k"]:
    """ET coefficients ``c = U_kᵀ vec(traj)`` (official ``ETDescriptor.to_ET_space``).

    Args:
      traj_norm: ``(..., T, 2)`` normalised trajectories.
      u: ``(2T, k)`` basis; cast to ``traj_norm``'s dtype.

    Returns:
      ``(..., k)`` coefficients.
    """
    traj_norm = check_array(traj_norm, "traj_norm", min_ndim=2, shape=(None, 2), kind="floating")
    t = traj_norm.shape[-2]
    u = check_array(u, "u", ndim=2, shape=(2 * t, None), kind="floating").astype(traj_norm.dtype)
    return traj_norm.reshape(traj_norm.shape[:-2] + (2 * t,)) @ u


def reconstruct(c: Float[Array, "... k"], u: Float[Array, "2t k"]) -> Float[Array, "... t 2"]:
    """Trajectories ``reshape(U_k c, T, 2)`` from coefficients (official ``ETDescriptor.to_Euclidean_space``).

    Args:
      c: ``(..., k)`` coefficients.
      u: ``(2T, k)`` basis; cast to ``c``'s dtype.

    Returns:
      ``(..., T, 2)`` normalised trajectories.
    """
    c = check_array(c, "c", min_ndim=1, kind="floating")
    u = check_array(u, "u", ndim=2, shape=(None, c.shape[-1]), kind="floating").astype(c.dtype)
    if u.shape[0] % 2:
        raise ValueError(f"u must have shape (2T, k) with an even number of rows, got {tuple(u.shape)}")
    return (c @ u.T).reshape(c.shape[:-1] + (u.shape[0] // 2, 2))


def _select(moving: jax.Array, a: jax.Array, b: jax.Array, trailing: int) -> jax.Array:
    return jnp.where(moving.reshape(moving.shape + (1,) * trailing), a, b)


def et_project(obs: Float[Array, "... to 2"], descriptor: ETDescriptor, pred: Float[Array, "... tp 2"] | None = None,
               ) -> tuple[Float[Array, "... k"], Float[Array, "... k"] | None, TrajNormParams, Bool[Array, " ..."]]:
    """Project agents onto their group's ET descriptor (official ``EigenTrajectory.forward``: the mask, then
    ``ET_m_descriptor.projection`` / ``ET_s_descriptor.projection``), with ``where`` instead of boolean indexing.

    Args:
      obs: ``(..., T_o, 2)`` observed positions.
      descriptor: :func:`fit_descriptor`.
      pred: optional ``(..., T_p, 2)`` true futures (training: the targets ``C_gt``).

    Returns:
      ``(c_obs, c_pred, params, moving)``: ``(..., k)``, ``(..., k)`` or None, the per-agent
      :class:`TrajNormParams` (for :func:`et_reconstruct`) and bool ``(...)``.
    """
    obs = check_array(obs, "obs", min_ndim=2, shape=(None, 2), kind="floating")
    params, moving = et_norm_params(obs, descriptor.static_dist)
    m, s = descriptor.moving, descriptor.static
    obs_n = normalize(obs, params)
    c_obs = _select(moving, project(obs_n, m.u_obs), project(obs_n, s.u_obs), 1)
    c_pred = None
    if pred is not None:
        pred = check_array(pred, "pred", ndim=obs.ndim, shape=(None, 2), kind="floating")
        if pred.shape[:-2] != obs.shape[:-2]:
            raise ValueError(f"pred must have the agents of obs {tuple(obs.shape[:-2])}, got {tuple(pred.shape)}")
        pred_n = normalize(pred, params)
        c_pred = _select(moving, project(pred_n, m.u_pred), project(pred_n, s.u_pred), 1)
    return c_obs, c_pred, params, moving


def et_reconstruct(c: Float[Array, "... s k"], descriptor: ETDescriptor, params: TrajNormParams,
                   moving: Bool[Array, " ..."]) -> Float[Array, "... s tp 2"]:
    """Euclidean futures from ET coefficients, ``S`` per agent (official ``ETDescriptor.reconstruction``:
    ``denorm(reshape(U_p c))`` per sample, per group).

    Args:
      c: ``(..., S, k)`` coefficients (e.g. refined anchors, :func:`refine_anchors`).
      descriptor: the fitted descriptor.
      params, moving: from :func:`et_project` of the same agents.

    Returns:
      ``(..., S, T_p, 2)`` positions in the world frame.
    """
    c = check_array(c, "c", min_ndim=2, kind="floating")
    if c.shape[:-2] != moving.shape:
        raise ValueError(f"c must have shape (..., S, k) with '...' = the agents {tuple(moving.shape)}, got "
                         f"{tuple(c.shape)}")
    y = _select(moving, reconstruct(c, descriptor.moving.u_pred), reconstruct(c, descriptor.static.u_pred), 3)
    per_sample = TrajNormParams(params.origin[..., None, :], params.rotation[..., None, :, :],
                                params.scale[..., None])
    return denormalize(y, per_sample)
