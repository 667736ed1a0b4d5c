"""Multi-modal trajectory forecasting metrics: best-of-S ADE / FDE, TCC and collision rate per agent, and masked means
over padded scenes.

The ETH/UCY protocol (Social-GAN, Gupta et al. CVPR 2018; EigenTrajectory ``utils/metrics.py``
``compute_batch_ade`` / ``compute_batch_fde``): a model outputs ``S`` (20) futures per agent; ADE is the smallest
over samples of the time-mean Euclidean error, FDE the smallest over samples of the final-step error — two
**independent** minima (the sample that attains the best ADE need not attain the best FDE). Reported numbers are the
means over all agents of a split (not over scenes). EigenTrajectory also reports TCC (:func:`temporal_correlation`,
``compute_batch_tcc``) and COL (:func:`collision_rate`, ``compute_batch_col``), per agent, averaged the same way
(``utils/trainer.py``: one scene per test batch, per-agent values concatenated over the split, then the mean).

These are JAX functions (``jit`` / ``vmap`` / ``grad``-safe, dtypes follow the inputs), unlike the host-side NumPy
metrics beside them, because training losses reuse them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["best_of_ade_fde", "collision_rate", "displacement_errors", "masked_mean", "temporal_correlation"]


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


def _check_agent_mask(mask, want: tuple[int, ...], what: str) -> jax.Array:
    mask = check_array(mask, "mask", kind="bool")
    if tuple(mask.shape) != want:
        raise ValueError(f"mask must have shape {want} ({what}), got {tuple(mask.shape)}")
    return mask


def temporal_correlation(pred: Float[Array, "... s t d"], gt: Float[Array, "... t d"],
                         mask: Bool[Array, " ..."] | None = None) -> Float[Array, " ..."]:
    """Temporal correlation coefficient (TCC) per agent (EigenTrajectory ``utils/metrics.py`` ``compute_batch_tcc``).

    The sample with the best **FDE** is kept, ``s* = argmin_s ‖Ŷ_{s,T} − Y_T‖₂`` (the first on ties), and its
    Pearson correlation over time with the truth is taken per coordinate, then averaged over the ``d`` coordinates::

        r_c  = clip(cov_t(Ŷ_{s*,t,c}, Y_{t,c}) / (σ_t(Ŷ_{s*,·,c}) σ_t(Y_{·,c})), −1, 1),   0 where undefined
        TCC  = (1/d) Σ_c r_c

    (covariance and standard deviations over the ``T`` steps; their ``1/(T−1)`` factors cancel).

    Undefined correlations: where a coordinate of the selected sample or of the truth is constant over time (zero
    variance, 0/0), ``r_c`` is **0**, as in the official code (which sets every NaN of its correlation matrix to 0);
    a non-moving agent thus gets 0, and a purely horizontal walk (constant ``y``) gets ``r_x / 2``. The official
    code maps *every* NaN to 0, so NaN in an agent's inputs also gives 0 here (not NaN). Like the official (which
    centres with a floating-point mean), a coordinate that is constant only up to rounding has a tiny non-zero
    variance and an ill-conditioned ``r_c``. Gradients are finite in all these cases (double ``where``).

    Args:
      pred: ``(..., S, T, d)`` sampled futures, ``T >= 2``.
      gt: ``(..., T, d)`` the true future.
      mask: optional bool ``(...)``, False for padded agents: they get 0 (gradient 0), whatever their inputs hold.
        Average with :func:`masked_mean` and the same mask.

    Returns:
      ``(...)`` TCC per agent in ``[−1, 1]``, in ``pred``'s dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.metrics import temporal_correlation
      >>> gt = jnp.array([[[0.0, 0.0], [1.0, 1.0], [2.0, 4.0]]])      # one agent, 3 steps
      >>> # sample 0: best ADE, correlated; sample 1: exact end point (best FDE), the path mirrored in time
      >>> pred = jnp.stack([gt[0] + 1, 2 * gt[0, -1] - gt[0]])[None]
      >>> round(float(temporal_correlation(pred, gt)[0]), 4)
      -1.0
    """
    pred = check_array(pred, "pred", min_ndim=3, kind="floating")
    gt = check_array(gt, "gt", min_ndim=2, kind="floating")
    if pred.shape[:-3] + pred.shape[-2:] != gt.shape:
        raise ValueError(f"pred must have shape (..., S, T, d) and gt (..., T, d) with the same '...', T, d; got "
                         f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)}")
    if pred.shape[-2] < 2:
        raise ValueError(f"pred must have T >= 2 steps (a correlation over time), got shape {tuple(pred.shape)}")
    if pred.shape[-3] < 1:
        raise ValueError(f"pred must have at least one sample S, got shape {tuple(pred.shape)}")
    if mask is not None:
        mask = _check_agent_mask(mask, tuple(pred.shape[:-3]), "one entry per agent: pred's leading shape")
        pred = jnp.where(mask[..., None, None, None], pred, jnp.zeros((), pred.dtype))
        gt = jnp.where(mask[..., None, None], gt, jnp.zeros((), gt.dtype))
    best = jnp.argmin(_safe_norm(pred[..., -1, :] - gt[..., None, -1, :]), axis=-1)  # (...)
    sel = jnp.take_along_axis(pred, best[..., None, None, None], axis=-3)[..., 0, :, :]  # (..., T, d)
    a = sel - jnp.mean(sel, axis=-2, keepdims=True)
    b = gt - jnp.mean(gt, axis=-2, keepdims=True)
    cov, var_a, var_b = (jnp.sum(u * v, axis=-2) for u, v in ((a, b), (a, a), (b, b)))  # (..., d); 1/(T-1) cancels
    ok = (var_a > 0) & (var_b > 0)
    one = jnp.ones((), cov.dtype)
    r = cov / jnp.sqrt(jnp.where(ok, var_a, one)) / jnp.sqrt(jnp.where(ok, var_b, one))
    r = jnp.where(ok & ~jnp.isnan(r), jnp.clip(r, -one, one), jnp.zeros((), r.dtype))
    tcc = jnp.mean(r, axis=-1)
    if mask is not None:
        tcc = jnp.where(mask, tcc, jnp.zeros((), tcc.dtype))
    return tcc


def _dense_positions(pred: jax.Array, num_interp: int, num_dense: int) -> jax.Array:
    """``(..., T, d)`` → ``(..., K, d)``: the positions at times ``k / num_interp`` steps, ``k < K``, on the
    piecewise-linear path through the ``T`` steps (K = ``min(num_dense, num_interp (T−1) + 1)``)."""
    t = pred.shape[-2]
    k = np.arange(min(num_dense, num_interp * (t - 1) + 1))
    lo = np.minimum(k // num_interp, max(t - 2, 0))
    hi = np.minimum(lo + 1, t - 1)
    frac = jnp.asarray((k - lo * num_interp) / num_interp, pred.dtype)[:, None]
    p_lo, p_hi = pred[..., lo, :], pred[..., hi, :]
    return p_lo + frac * (p_hi - p_lo)


def collision_rate(pred: Float[Array, "... n s t d"], mask: Bool[Array, "... n"] | None = None, *,
                   threshold: float = 0.2, num_interp: int = 4,
                   num_dense: int | None = None) -> Float[Array, "... n"]:
    """Collision rate (COL, in percent) per agent of one scene (EigenTrajectory ``utils/metrics.py``
    ``compute_batch_col``).

    Each predicted path is linearly interpolated with ``num_interp`` (4) sub-steps per step, giving positions
    ``P̃_{n,s,k}`` at times ``k / num_interp`` (``k = 0`` is the first predicted step); only the first ``num_dense``
    of them are used — the official ``3 · num_interp + 2`` = 14, i.e. the first 3¼ steps of the future, not the whole
    horizon. Agent ``n`` collides in sample ``s`` if another real agent ``m`` of the same scene comes closer than
    ``threshold`` (0.2, in the data's units: metres on ETH/UCY) at some such time, in the **same** sample::

        COL_n = 100 · (1/S) Σ_s 1[ ∃ m ≠ n : min_k ‖P̃_{n,s,k} − P̃_{m,s,k}‖₂ < threshold ]

    A scene with one (real) agent has no pairs: COL = 0. The split's number is the mean over all agents
    (:func:`masked_mean`).

    Deviations (rounding only for the official settings): the sub-steps are computed as
    ``p_j + (i / num_interp)(p_{j+1} − p_j)`` rather than the official cumulative sum of the divided increments (the
    same points up to float rounding); an agent is excluded from its own partners explicitly, where the official
    adds 1 to the self-distance (the same for ``threshold <= 1``). NaN positions never collide (as the official).

    Args:
      pred: ``(..., N, S, T, d)`` sampled futures of the ``N`` agents of a scene (``...``: e.g. padded windows).
      mask: optional bool ``(..., N)``, False for padded agents: they never collide, are nobody's partner, and get 0.
      threshold: collision distance (official 0.2).
      num_interp: sub-steps per step (official 4).
      num_dense: how many interpolated positions, from the first, are checked; None: the official
        ``3 * num_interp + 2``. At most ``num_interp (T − 1) + 1`` exist (fewer are used if ``T`` is short).

    Returns:
      ``(..., N)`` COL per agent in ``[0, 100]``, in ``pred``'s dtype (piecewise constant: gradient 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.metrics import collision_rate
      >>> start = jnp.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])   # agents 0 and 1 are 0.1 apart, agent 2 far
      >>> pred = jnp.broadcast_to(start[:, None, None, :], (3, 1, 4, 2))  # 1 sample, 4 steps, standing still
      >>> collision_rate(pred).tolist()
      [100.0, 100.0, 0.0]
      >>> collision_rate(pred, jnp.array([True, False, True])).tolist()  # agent 1 padded
      [0.0, 0.0, 0.0]
    """
    pred = check_array(pred, "pred", min_ndim=4, kind="floating")
    if not isinstance(num_interp, int | np.integer) or num_interp < 1:
        raise ValueError(f"num_interp must be an int >= 1, got {num_interp!r}")
    if num_dense is None:
        num_dense = 3 * int(num_interp) + 2
    if not isinstance(num_dense, int | np.integer) or num_dense < 1:
        raise ValueError(f"num_dense must be None or an int >= 1, got {num_dense!r}")
    if pred.shape[-2] < 1 or pred.shape[-3] < 1:
        raise ValueError(f"pred must have at least one sample S and one step T, got shape {tuple(pred.shape)}")
    n = pred.shape[-4]
    if mask is None:
        mask = jnp.ones(pred.shape[:-3], bool)
    else:
        mask = _check_agent_mask(mask, tuple(pred.shape[:-3]), "one entry per agent: pred's shape without S, T, d")
    dense = _dense_positions(pred, int(num_interp), int(num_dense))  # (..., N, S, K, d)
    dist = _safe_norm(dense[..., :, None, :, :, :] - dense[..., None, :, :, :, :])  # (..., N, N, S, K)
    close = jnp.min(dist, axis=-1) < threshold  # (..., N, N, S); NaN: False
    pair = mask[..., :, None] & mask[..., None, :] & ~np.eye(n, dtype=bool)  # (..., N, N)
    hit = jnp.any(close & pair[..., None], axis=-2)  # (..., N, S): n collides with someone in sample s
    s = hit.shape[-1]
    # 100 · count / S from a table: the same value whatever XLA does to a division (under jit, x / S becomes x · (1/S))
    table = jnp.asarray(100.0 * np.arange(s + 1) / s, pred.dtype)
    return table[jnp.sum(hit, axis=-1)]
