"""eigenkit.linalg — pure spectral linear-algebra primitives (no Flax, no state; jit/vmap/grad-compatible).

Functions, and the methods of eigenkit that use them:

Eigendecomposition with safe gradients
  * ``eigh(a, *, grad_rule=EighGrad.BROADENED|MASKED|STRICT|EXACT, eps_rel)`` — eigh with a selectable
    eigenvector-derivative rule; :class:`EighGrad` states which losses each rule differentiates correctly on
    repeated eigenvalues. SPE, GCR, RKHS.
  * ``eigh_projector(a, d, *, which=Which.LARGEST|SMALLEST)`` — top/bottom-d eigenprojector with the
    cross-block-gap derivative. EigenShield, GCR, RKHS (learned vs true eigenspace), SPE.
  * ``spectral_function(a, f)`` — ``V f(Λ) Vᵀ`` for a fixed elementwise ``f``, Daleckii–Krein derivative. EoRA.
  * ``spectral_tensor(a, phi)`` — ``V diag(φ(λ)) Vᵀ`` for a learned / multi-channel φ, exact gradients on
    degenerate spectra (divided differences). SPE.
  * ``topk_eigh(a, k, *, which)`` — eigh + slice. SPE, EigenTrajectory, EigenShield.
Large / matrix-free operators
  * ``subspace_iteration(matvec, n, k, *, key)``, ``lobpcg_eigh(matvec, n, k, *, key, which)`` — top-k
    eigenpairs of symmetric operators given as functions; both return ``(w, v, IterInfo)``, ``v`` as columns.
    RKHS, GCR probe, EigenShield, MLC spectral clustering.
  * ``matfree_svd(matvec, rmatvec, n, k, *, key)``, ``jacobian_topk_svd(f, x, k, *, key)`` — top-k singular
    triplets of linear maps / Jacobians by block power iteration; they return ``(u, s, v, IterInfo)`` with the
    right singular vectors ``v: (n, k)`` as *columns* (the iteration's block), whereas the dense
    ``truncated_svd`` / ``randomized_svd`` return ``vh: (k, n)`` as *rows* (NumPy's convention). h-space.
SVD, PCA, whitening, angles
  * ``truncated_svd(m, k)``, ``randomized_svd(m, k, *, key, oversample, n_iter)``. EigenTrajectory, EoRA, h-space.
  * ``pca_fit / pca_transform / pca_inverse_transform`` on ``PCAState`` (``PCAMethod.SVD|GRAM|COVARIANCE``).
    h-space (Gram-trick PCA), EigenTrajectory, EigenShield.
  * ``sym_sqrt``, ``sym_inv_sqrt``, ``whiten_eigh``, ``whiten_cholesky``; ``eigh_sqrt_factors(cov, *, clamp)``
    (``L = QΛ^{1/2}``, ``L⁻¹``, with an ``EigenClamp`` rule) and ``cholesky_factor(cov, *, jitter_rel)``. EoRA.
  * ``principal_angles(a, b)`` — any full-rank bases, batched (also exported as
    ``eigenkit.manifolds.principal_angles``: one function). GCR, RKHS, h-space.
Sinkhorn and coding rates
  * ``sinkhorn_log(logits, *, eta, n_iter, grad_mode=SinkhornGrad.UNROLLED|STOP_V)``. MLC (membership Γ).
  * ``coding_rate(z, eps)``, ``compressed_coding_rate(z, pi, eps)``, ``logdet_psd(a)``. MLC (MCR² objective).
Random-matrix theory
  * ``marchenko_pastur_pdf``, ``mp_edges``, ``mp_median``, ``estimate_noise_variance``, ``bbp_threshold``,
    ``spiked_eigenvalue_limit``, ``detect_spikes``. EigenShield.

Inputs are checked at trace time (shapes, dtypes, static sizes) with errors that name the argument; concrete
values (e.g. ``eta <= 0``, a negative ratio) are checked when not traced.
"""

from eigenkit.linalg._angles import principal_angles
from eigenkit.linalg._coding_rate import coding_rate, compressed_coding_rate, logdet_psd
from eigenkit.linalg._eigh import (
    EighGrad,
    Which,
    eigh,
    eigh_projector,
    spectral_function,
    spectral_tensor,
    topk_eigh,
)
from eigenkit.linalg._matfree import jacobian_topk_svd, matfree_svd
from eigenkit.linalg._pca import PCAMethod, PCAState, pca_fit, pca_inverse_transform, pca_transform
from eigenkit.linalg._rmt import (
    NoiseEstimator,
    SpikeDetection,
    bbp_threshold,
    detect_spikes,
    estimate_noise_variance,
    marchenko_pastur_pdf,
    mp_edges,
    mp_median,
    spiked_eigenvalue_limit,
)
from eigenkit.linalg._sinkhorn import SinkhornGrad, sinkhorn_log
from eigenkit.linalg._svd import randomized_svd, truncated_svd
from eigenkit.linalg._topk import IterInfo, lobpcg_eigh, subspace_iteration
from eigenkit.linalg._whiten import (
    EigenClamp,
    cholesky_factor,
    eigh_sqrt_factors,
    sym_inv_sqrt,
    sym_sqrt,
    whiten_cholesky,
    whiten_eigh,
)

__all__ = [
    "EigenClamp",
    "EighGrad",
    "IterInfo",
    "NoiseEstimator",
    "PCAMethod",
    "PCAState",
    "SinkhornGrad",
    "SpikeDetection",
    "Which",
    "bbp_threshold",
    "cholesky_factor",
    "coding_rate",
    "compressed_coding_rate",
    "detect_spikes",
    "eigh",
    "eigh_projector",
    "eigh_sqrt_factors",
    "estimate_noise_variance",
    "jacobian_topk_svd",
    "lobpcg_eigh",
    "logdet_psd",
    "marchenko_pastur_pdf",
    "matfree_svd",
    "mp_edges",
    "mp_median",
    "pca_fit",
    "pca_inverse_transform",
    "pca_transform",
    "principal_angles",
    "randomized_svd",
    "sinkhorn_log",
    "spectral_function",
    "spectral_tensor",
    "spiked_eigenvalue_limit",
    "subspace_iteration",
    "sym_inv_sqrt",
    "sym_sqrt",
    "topk_eigh",
    "truncated_svd",
    "whiten_cholesky",
    "whiten_eigh",
]
