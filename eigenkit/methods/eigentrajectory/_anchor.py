"""ET anchors: k-means centroids of the training futures' ET coefficients, refined by the backbone (official
``EigenTrajectory/anchor.py`` ``ETAnchor``).

Fit (host, once): the futures of the augmented train + val set are normalised and projected on their group's
``U_p``; scikit-learn ``KMeans(n_clusters=S, random_state=0, init='k-means++', n_init=10)`` (exactly the official
call) clusters the ``(n, k)`` coefficients of each group into ``S = 20`` anchors. Differences: k-means runs on the
float64 coefficients (official: float32), and the centroids are returned in the input's dtype (official: float32).
The official ``kmeans.py`` batch k-means is unused there and here. Anchors are frozen constants (keep them out of the
optimiser's params tree: official ``nn.Parameter``s that torch's AdamW skips because their gradient is None).
scikit-learn is an optional dependency (the ``experiments`` extra), imported on call.

Refinement (traced, ``jit``-safe): ``C = C_anchor + C_residual`` per agent with its group's anchors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array
from eigenkit.methods.eigentrajectory._descriptor import ETDescriptor, _split
from eigenkit.methods.eigentrajectory._normalizer import _np_norm_params, _np_normalize

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["ETAnchors", "fit_anchors", "kmeans_anchors", "refine_anchors"]


class ETAnchors(NamedTuple):
    """Anchors of both groups (official ``ET_m_anchor.C_anchor`` / ``ET_s_anchor.C_anchor``, transposed).

    Attributes:
      moving: ``(S, k)`` k-means centroids of the moving agents' future coefficients.
      static: ``(S, k)`` those of the static agents.
    """

    moving: np.ndarray
    static: np.ndarray


def kmeans_anchors(c_pred, num_anchors: int = 20, *, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means++ centroids of coefficients (official ``ETAnchor.anchor_generation``'s
    ``KMeans(n_clusters=S, random_state=0, init='k-means++', n_init=10).fit(C_pred).cluster_centers_``).

    Args:
      c_pred: ``(n, k)`` coefficients, ``n >= num_anchors``; clustered in float64.
      num_anchors: ``S`` (official ``num_samples`` = 20).
      seed: ``random_state``.
      n_init: k-means++ restarts.

    Returns:
      ``(S, k)`` centroids in ``c_pred``'s dtype, in scikit-learn's cluster order.
    """
    from sklearn.cluster import KMeans

    c = np.asarray(c_pred)
    if c.ndim != 2 or not np.issubdtype(c.dtype, np.floating):
        raise ValueError(f"c_pred must be a floating (n, k) array, got {c.dtype} {c.shape}")
    if len(c) < num_anchors:
        raise ValueError(f"c_pred has {len(c)} rows, fewer than num_anchors = {num_anchors}")
    km = KMeans(n_clusters=int(num_anchors), random_state=int(seed), init="k-means++", n_init=int(n_init))
    return km.fit(c.astype(np.float64)).cluster_centers_.astype(c.dtype)


def fit_anchors(obs, pred, descriptor: ETDescriptor, *, num_anchors: int = 20, flip: bool = True,
                reverse: bool = False, seed: int = 0, n_init: int = 10) -> ETAnchors:
    """Anchors of both groups from the training trajectories (official ``calculate_parameters``: the future
    coefficients returned by each ``parameter_initialization``, then ``anchor_generation``). Host function.

    Args:
      obs, pred: ``(n, T_o, 2)`` / ``(n, T_p, 2)`` train + val trajectories — the same arrays and ``flip`` /
        ``reverse`` as given to :func:`fit_descriptor`.
      descriptor: the fitted descriptor.
      num_anchors, seed, n_init: :func:`kmeans_anchors`.

    Returns:
      :class:`ETAnchors` in ``obs``' dtype.
    """
    obs, pred, moving = _split(obs, pred, descriptor.static_dist, flip, reverse)
    out = {}
    for name, sel, scale, basis in (("moving", moving, True, descriptor.moving),
                                    ("static", ~moving, False, descriptor.static)):
        o64, p64 = obs[sel].astype(np.float64), pred[sel].astype(np.float64)
        pn = _np_normalize(p64, _np_norm_params(o64, scale=scale))
        c = pn.reshape(len(pn), -1) @ np.asarray(basis.u_pred, np.float64)
        out[name] = kmeans_anchors(c, num_anchors, seed=seed, n_init=n_init).astype(obs.dtype)
    return ETAnchors(out["moving"], out["static"])


def refine_anchors(residual: Float[Array, "... s k"], anchors: ETAnchors,
                   moving: Bool[Array, " ..."]) -> Float[Array, "... s k"]:
    """``C = C_anchor + C_residual`` with each agent's group anchors (official ``ETAnchor.forward``).

    Args:
      residual: ``(..., S, k)`` the backbone's output per agent.
      anchors: :func:`fit_anchors`; cast to ``residual``'s dtype.
      moving: bool ``(...)`` from :func:`et_project`.

    Returns:
      ``(..., S, k)`` refined coefficients.
    """
    residual = check_array(residual, "residual", min_ndim=2, kind="floating")
    dt = residual.dtype
    am = check_array(anchors.moving, "anchors.moving", ndim=2, shape=residual.shape[-2:]).astype(dt)
    ast = check_array(anchors.static, "anchors.static", ndim=2, shape=residual.shape[-2:]).astype(dt)
    moving = check_array(moving, "moving", kind="bool")
    if moving.shape != residual.shape[:-2]:
        raise ValueError(f"moving must have shape {tuple(residual.shape[:-2])} (the agents of residual), got "
                         f"{tuple(moving.shape)}")
    sel: jax.Array = moving[..., None, None]
    return jnp.where(sel, am, ast) + residual
