"""Evaluation metrics and probes shared by the experiments (host-side NumPy; one place for every method).

Representation quality: :func:`linear_probe` (the frozen-feature transfer protocol of GCR, RKHS SSL, MLC) and
:func:`intra_class_variability` (Kornblith et al. 2021). Clustering (MLC): :func:`clustering_accuracy` (Hungarian
ACC), :func:`normalized_mutual_info`, :func:`spectral_clustering`, :func:`kmeans`, :func:`knn_affinity`,
:func:`numerical_rank`. Trajectory forecasting (EigenTrajectory; JAX, jit/vmap-safe): :func:`best_of_ade_fde`,
:func:`temporal_correlation` (TCC), :func:`collision_rate` (COL), :func:`displacement_errors`, :func:`masked_mean`.
New methods add their evaluation here (PSNR/SSIM, relative L2) rather than inside one method.
"""

from eigenkit.metrics._clustering import (
    clustering_accuracy,
    kmeans,
    knn_affinity,
    normalized_mutual_info,
    numerical_rank,
    spectral_clustering,
)
from eigenkit.metrics._probe import intra_class_variability, linear_probe
from eigenkit.metrics._trajectory import (
    best_of_ade_fde,
    collision_rate,
    displacement_errors,
    masked_mean,
    temporal_correlation,
)

__all__ = [
    "best_of_ade_fde",
    "clustering_accuracy",
    "collision_rate",
    "displacement_errors",
    "intra_class_variability",
    "kmeans",
    "knn_affinity",
    "linear_probe",
    "masked_mean",
    "normalized_mutual_info",
    "numerical_rank",
    "spectral_clustering",
    "temporal_correlation",
]
