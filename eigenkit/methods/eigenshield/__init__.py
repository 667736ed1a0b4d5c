"""EigenShield-style (reconstructed): random-matrix causal-subspace filtering of embeddings (Darabi, Naik, Tayebati,
Jayasuriya, Krishnan & Trivedi, "EigenShield: Causal Subspace Filtering via Random Matrix Theory for Adversarially
Robust Vision-Language Models", arXiv:2502.14976, 2025).

**Status: reconstructed.** There is no official code, and only the paper's abstract could be checked
(``shared/methods/eigenshield.md``); the paper's own equation numbers are therefore not known, and each function
names the abstract step it implements. From the abstract: random-matrix theory on the embeddings' covariance, the
spiked covariance model to find structured spectral deviations, a *robustness-based nonconformity score* (RbNS) with
*quantile-based thresholding* separating causal from correlational eigenvectors, and projection of embeddings onto
the causal subspace at inference, with no change to the model. **Reconstructed** (assumptions of these notes, to be
checked against the paper): the covariance normalisation ``1/(n − 1)``; the noise estimator (median eigenvalue over
the Marchenko–Pastur median) and the Tracy–Widom margin on the bulk edge; the RbNS formula (bootstrap /
noise-injected subspace stability, :func:`robustness_scores`); the conformal form of the quantile
(:func:`conformal_quantile`) computed on the spikes' own scores; the mean handling of the projection
``e' = μ + U_𝒞 U_𝒞ᵀ (e − μ)`` (the calibration mean is kept, non-causal directions are removed, bulk directions
included).

The math (standard RMT, eigenkit.linalg): for data ``E: n × d`` with ``γ = d/(n−1)`` and noise variance ``σ²``, the
sample-covariance bulk follows Marchenko–Pastur on ``[σ²(1−√γ)², σ²(1+√γ)²]``; a population spike ``σ² + ℓ``
separates from it iff ``ℓ > σ²√γ`` (BBP).

Pipeline::

    st = fit(calibration, max_rank, key=key)         # EigenShieldState (pytree; save / load)
    clean = transform(st, embeddings)                # (..., d) → (..., d), differentiable
    transform(pca_baseline(st), embeddings)          # same rank, top-k PCA
    transform(random_baseline(st, key=k2), embeddings)
    transform(no_defence(st), embeddings)            # identity

Under ``jit`` the causal rank is a mask over a fixed ``max_rank`` columns (``P = U diag(m) Uᵀ``).
"""

from eigenkit.methods.eigenshield._baselines import no_defence, pca_baseline, random_baseline
from eigenkit.methods.eigenshield._conformal import conformal_quantile
from eigenkit.methods.eigenshield._fit import bootstrap_indices, fit, robustness_scores
from eigenkit.methods.eigenshield._project import causal_rank, projector, transform
from eigenkit.methods.eigenshield._state import EigenShieldState, SubspaceProjection, load, save

__all__ = [
    "EigenShieldState",
    "SubspaceProjection",
    "bootstrap_indices",
    "causal_rank",
    "conformal_quantile",
    "fit",
    "load",
    "no_defence",
    "pca_baseline",
    "projector",
    "random_baseline",
    "robustness_scores",
    "save",
    "transform",
]
