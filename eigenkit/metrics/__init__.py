"""Evaluation metrics and probes shared by the experiments (host-side NumPy; one place for every method).

Representation quality: :func:`linear_probe` (the frozen-feature transfer protocol of GCR, RKHS SSL, MLC) and
:func:`intra_class_variability` (Kornblith et al. 2021). New methods add their evaluation here (Hungarian ACC/NMI,
ADE/FDE, PSNR/SSIM, relative L2) rather than inside one method.
"""

from eigenkit.metrics._probe import intra_class_variability, linear_probe

__all__ = ["intra_class_variability", "linear_probe"]
