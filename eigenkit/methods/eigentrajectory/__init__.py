"""EigenTrajectory — low-rank descriptors for multi-modal trajectory forecasting (Bae, Oh & Jeon, ICCV 2023,
arXiv 2307.09306).

Official code: ``InhwanBae/EigenTrajectory`` @ ``f2f8fc3`` (MIT); each function names the official function it
re-implements. Pieces:

* normalisation — :func:`traj_norm_params`, :func:`normalize`, :func:`denormalize`; moving / static split
  :func:`is_moving`, :func:`et_norm_params` (``normalizer.py`` ``TrajNorm``; ``model.py`` mask);
* ET descriptor — :func:`fit_descriptor` (host, float64 SVD of the y-flip-augmented train + val set, per group),
  :func:`truncated_svd`, :func:`fit_basis`, :func:`augment_trajectories`, :func:`project`, :func:`reconstruct`,
  :func:`et_project`, :func:`et_reconstruct` (``descriptor.py`` ``ETDescriptor``);
* ET anchors — :func:`fit_anchors`, :func:`kmeans_anchors` (host, scikit-learn k-means++), :func:`refine_anchors`
  (``anchor.py`` ``ETAnchor``);
* model glue and loss — :func:`backbone_inputs`, :func:`forecast`, :func:`eigentrajectory_loss` (``model.py``
  ``EigenTrajectory.forward``); best-of-S ADE / FDE are :func:`eigenkit.metrics.best_of_ade_fde`;
* models — :class:`ETForecaster` (any backbone in ET space: anchors + predicted coefficient residuals) and its
  Euclidean twin :class:`EuclideanForecaster` (same backbone, raw normalised futures, :func:`euclidean_loss`),
  the interaction backbone :class:`SocialTransformer` (masked attention over a scene's agents with a learned
  distance decay), :func:`scene_forecasts` (``vmap`` over padded scenes); the fitted constants are
  :class:`ETConstant` variables, never seen by the optimiser.

Data: :func:`eigenkit.data.ethucy` and :func:`eigenkit.data.pad_windows` (scenes padded with an agent mask, for
``vmap`` over scenes). Traced functions take ``(..., T, 2)`` agents and are ``jit``/``vmap``-safe; the fits are
one-off host functions returning frozen NumPy constants (keep them out of the optimiser's params tree).
"""

from eigenkit.methods.eigentrajectory._anchor import ETAnchors, fit_anchors, kmeans_anchors, refine_anchors
from eigenkit.methods.eigentrajectory._descriptor import (
    ETBasis,
    ETDescriptor,
    augment_trajectories,
    et_project,
    et_reconstruct,
    fit_basis,
    fit_descriptor,
    project,
    reconstruct,
    truncated_svd,
)
from eigenkit.methods.eigentrajectory._loss import backbone_inputs, eigentrajectory_loss, forecast
from eigenkit.methods.eigentrajectory._model import (
    ETConstant,
    ETForecaster,
    EuclideanForecaster,
    SocialTransformer,
    euclidean_loss,
    scene_forecasts,
)
from eigenkit.methods.eigentrajectory._normalizer import (
    TrajNormParams,
    denormalize,
    et_norm_params,
    is_moving,
    normalize,
    traj_norm_params,
)

__all__ = [
    "ETAnchors",
    "ETBasis",
    "ETConstant",
    "ETDescriptor",
    "ETForecaster",
    "EuclideanForecaster",
    "SocialTransformer",
    "TrajNormParams",
    "augment_trajectories",
    "backbone_inputs",
    "denormalize",
    "eigentrajectory_loss",
    "et_norm_params",
    "et_project",
    "et_reconstruct",
    "euclidean_loss",
    "fit_anchors",
    "fit_basis",
    "fit_descriptor",
    "forecast",
    "is_moving",
    "kmeans_anchors",
    "normalize",
    "project",
    "reconstruct",
    "refine_anchors",
    "scene_forecasts",
    "traj_norm_params",
    "truncated_svd",
]
