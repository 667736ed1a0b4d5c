"""RKHS view of augmentation-based self-supervised learning (Zhai, Liu, Risteski, Kolter & Ravikumar, "Understanding
Augmentation-based Self-Supervised Representation Learning via RKHS Approximation and Regression", ICLR 2024,
arXiv:2306.00788). No official code exists; the equations follow ``shared/methods/rkhs.md`` (structure verified
against the OpenReview record, constants of the bounds recalled, not checked against the PDF).

* :mod:`._kernels`: augmentation kernels (eq. 1 by enumeration, the i.i.d.-masking product formula, a Monte-Carlo
  estimator for augmentations without one), their ``L²(P_X)`` spectra and the augmentation complexity ``κ²``;
* :mod:`._learning`: the top-d eigenspace target, trace gap, the spectral contrastive loss, the ridge probe and
  kernel ridge ("RKHS") regression, and the Walsh parities of the toy cube;
* :mod:`._matfree`: matrix-free products ``K v`` with the masking kernel, one row block at a time (for iterative
  top-d eigenspaces, ``linalg.lobpcg_eigh``, on point sets whose ``n × n`` kernel does not fit).

The experiments live in ``experiments/rkhs``.
"""

from eigenkit.methods.rkhs._kernels import (
    MASK,
    augmentation_kernel,
    kappa_sq,
    kernel_spectrum,
    masking_augmentations,
    masking_kernel,
    mc_kappa_sq,
)
from eigenkit.methods.rkhs._learning import (
    kernel_ridge,
    ridge_probe,
    spectral_contrastive_loss,
    top_d_eigenspace,
    trace_gap,
    walsh_parities,
)
from eigenkit.methods.rkhs._matfree import masking_kernel_matvec

__all__ = [
    "MASK",
    "augmentation_kernel",
    "kappa_sq",
    "kernel_ridge",
    "kernel_spectrum",
    "masking_augmentations",
    "masking_kernel",
    "masking_kernel_matvec",
    "mc_kappa_sq",
    "ridge_probe",
    "spectral_contrastive_loss",
    "top_d_eigenspace",
    "trace_gap",
    "walsh_parities",
]
