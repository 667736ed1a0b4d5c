"""Symmetric square roots and whitening transforms of covariance matrices (EoRA, PCA whitening).

What "the same result" means for the two whitening transforms. For an SPD covariance ``C``:

* ``whiten_eigh``: ``W_zca = C^{-1/2}`` (ZCA / Mahalanobis whitening, symmetric);
* ``whiten_cholesky``: ``W_chol = L⁻¹`` with ``C = L Lᵀ`` (lower triangular; float32-safe, no eigensolver).

Both satisfy ``W C Wᵀ = I`` (whitened covariance is the identity) and ``Wᵀ W = C⁻¹`` (identical Mahalanobis
norms ``‖W x‖² = xᵀ C⁻¹ x``), and ``W_chol = Q W_zca`` for the orthogonal ``Q = L⁻¹ C^{1/2}``. They are *not* the
same matrix: whitened data differ by that rotation. Use whichever is cheaper when only the above invariants matter.
"""

from __future__ import annotations

import enum
import functools

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_square
from eigenkit.linalg._eigh import spectral_function

__all__ = ["EigenClamp", "cholesky_factor", "eigh_sqrt_factors", "sym_inv_sqrt", "sym_sqrt", "whiten_cholesky",
           "whiten_eigh"]


class EigenClamp(enum.Enum):
    """Rule for the non-positive eigenvalues of a covariance in :func:`eigh_sqrt_factors`.

    * ``PINV_RTOL`` (GPTQModel's rule): keep ``λ > λ_max · min(1, d · eps_f32)``; the others are zeroed in both
      ``Λ^{1/2}`` and ``Λ^{-1/2}`` (truncated pseudo-inverse). Always finite; an all-nonpositive spectrum gives zeros.
      The cut is relative to ``λ_max``, so with a dominant outlier eigenvalue it discards real directions.
    * ``NVLABS_MINPOS`` (NVlabs ``eora.py``): negative eigenvalues are replaced by the smallest positive one; exact
      zeros are kept (``Λ^{-1/2}`` is then infinite, as in the official code) and a spectrum with no positive
      eigenvalue gives non-finite factors.
    """

    PINV_RTOL = "pinv_rtol"
    NVLABS_MINPOS = "nvlabs_minpos"


def eigh_sqrt_factors(cov, *, clamp: EigenClamp = EigenClamp.PINV_RTOL):
    """Eigen square root ``L = Q Λ^{1/2}`` and its (pseudo-)inverse ``L⁻¹ = Λ^{-1/2} Qᵀ`` of a symmetric ``cov``.

    ``L Lᵀ = cov`` (for a PSD ``cov`` whose eigenvalues the clamp keeps) and ``L⁻¹`` is the PCA whitening matrix
    (``L⁻¹ cov L⁻ᵀ = I`` on the kept eigenspace); compare :func:`whiten_eigh` (the symmetric ZCA form).

    Args:
      cov: ``(d, d)`` symmetric covariance (only the lower triangle is read, as ``eigh`` does); ``eigh`` runs in its
        dtype.
      clamp: :class:`EigenClamp` rule for non-positive (and, for ``PINV_RTOL``, tiny) eigenvalues.

    Returns:
      ``(L, L_inv)``, both ``(d, d)`` in the dtype of ``cov``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import eigh_sqrt_factors
      >>> l, l_inv = eigh_sqrt_factors(jnp.array([[4.0, 0.0], [0.0, 1.0]]))
      >>> bool(jnp.allclose(l @ l.T, jnp.diag(jnp.array([4.0, 1.0])))), bool(jnp.allclose(l_inv @ l, jnp.eye(2)))
      (True, True)

    Raises:
      TypeError: ``clamp`` is not an :class:`EigenClamp`.
    """
    cov = check_square(cov, "cov", kind="floating")
    if not isinstance(clamp, EigenClamp):
        raise TypeError(f"clamp must be an EigenClamp, got {clamp!r}")
    lam, q = jnp.linalg.eigh(cov)
    if clamp is EigenClamp.PINV_RTOL:
        d = cov.shape[-1]
        tol = jnp.max(lam) * min(1.0, d * float(jnp.finfo(jnp.float32).eps))
        keep = lam > jnp.maximum(tol, 0.0)
        safe = jnp.where(keep, lam, 1.0)
        root = jnp.where(keep, jnp.sqrt(safe), 0.0)
        inv_root = jnp.where(keep, 1.0 / jnp.sqrt(safe), 0.0)
    else:
        min_pos = jnp.min(jnp.where(lam > 0, lam, jnp.inf))
        lam = jnp.where(lam < 0, min_pos, lam)
        root = jnp.sqrt(lam)
        inv_root = 1.0 / root
    return q * root[None, :], inv_root[:, None] * q.T


def cholesky_factor(cov, *, jitter_rel: float = 0.0):
    """Lower Cholesky factor ``L`` of ``C + j I = L Lᵀ`` with ``j = jitter_rel · tr(C)/d`` (float32-safe, no
    eigensolver; a non-SPD ``cov`` gives NaN, as ``jnp.linalg.cholesky`` does).

    Args:
      cov: ``(..., d, d)`` SPD covariance.
      jitter_rel: static relative diagonal jitter (for PSD-but-singular covariances).

    Returns:
      ``(..., d, d)`` lower-triangular ``L``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import cholesky_factor
      >>> c = jnp.array([[4.0, 2.0], [2.0, 2.0]])
      >>> bool(jnp.allclose(cholesky_factor(c) @ cholesky_factor(c).T, c))
      True
    """
    cov = check_square(cov, "cov", kind="floating")
    if jitter_rel:
        d = cov.shape[-1]
        tr = jnp.trace(cov, axis1=-2, axis2=-1)[..., None, None]
        cov = cov + (jitter_rel / d) * tr * jnp.eye(d, dtype=cov.dtype)
    return jnp.linalg.cholesky(cov)


def _clamped_pow(power, floor, lam):
    return jnp.maximum(lam, floor) ** power


def _scaled_power(a, power: float, floor_rel: float):
    # A^p = s^p (A/s)^p for s > 0; s = ‖A‖_F is held constant (stop_gradient): exact for unclamped eigenvalues
    # because A ↦ A^p is homogeneous, and it makes the clamp floor relative to the scale of A.
    fro = jax.lax.stop_gradient(jnp.sqrt(jnp.sum(a * a, axis=(-2, -1), keepdims=True)))
    s = jnp.where(fro > 0, fro, 1)
    f = functools.partial(_clamped_pow, power, floor_rel)
    return spectral_function(a / s, f) * s**power


def sym_sqrt(a, *, floor_rel: float = 0.0):
    """Principal square root ``A^{1/2} = V max(Λ, f)^{1/2} Vᵀ`` of a symmetric PSD matrix.

    Eigenvalues below ``f = floor_rel · ‖A‖_F`` (including small negative round-off) are clamped to ``f``.
    The derivative is the Daleckii–Krein rule of :func:`spectral_function` (exact under repeated eigenvalues);
    it is infinite at a zero eigenvalue when ``floor_rel = 0`` (as is the true derivative of ``√·`` at 0).

    Args:
      a: ``(..., n, n)`` symmetric PSD matrix (symmetrised first).
      floor_rel: static relative eigenvalue floor.

    Returns:
      ``(..., n, n)`` symmetric ``A^{1/2}``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import sym_sqrt
      >>> bool(jnp.allclose(sym_sqrt(4.0 * jnp.eye(2)), 2.0 * jnp.eye(2)))
      True
    """
    a = check_square(a, "a", kind="floating")
    return _scaled_power(a, 0.5, float(floor_rel))


def sym_inv_sqrt(a, *, floor_rel: float | None = None):
    """Inverse square root ``A^{-1/2} = V max(Λ, f)^{-1/2} Vᵀ`` with floor ``f = floor_rel · ‖A‖_F``.

    Args:
      a: ``(..., n, n)`` symmetric PSD matrix.
      floor_rel: static relative eigenvalue floor; default ``n · finfo(dtype).eps`` keeps the result finite for
        singular ``A`` (the null space is scaled by ``f^{-1/2}``); pass ``0.0`` for no clamp (``inf`` if singular).

    Returns:
      ``(..., n, n)`` symmetric ``A^{-1/2}``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import sym_inv_sqrt
      >>> bool(jnp.allclose(sym_inv_sqrt(4.0 * jnp.eye(2)), 0.5 * jnp.eye(2)))
      True
    """
    a = check_square(a, "a", kind="floating")
    if floor_rel is None:
        floor_rel = a.shape[-1] * float(np.finfo(a.dtype).eps)
    return _scaled_power(a, -0.5, float(floor_rel))


def whiten_eigh(cov, *, floor_rel: float | None = None):
    """ZCA whitening matrix ``W = C^{-1/2}`` (see the module docstring for how it relates to Cholesky whitening).

    Apply as ``x_white = (x − μ) Wᵀ`` (``= (x − μ) W`` since ``W`` is symmetric).

    Args:
      cov: ``(..., d, d)`` SPD covariance.
      floor_rel: eigenvalue clamp of :func:`sym_inv_sqrt`.

    Returns:
      ``(..., d, d)`` symmetric ``W`` with ``W C Wᵀ = I``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import whiten_eigh
      >>> c = jnp.array([[2.0, 0.5], [0.5, 1.0]])
      >>> w = whiten_eigh(c)
      >>> bool(jnp.allclose(w @ c @ w.T, jnp.eye(2), atol=1e-5))
      True
    """
    return sym_inv_sqrt(cov, floor_rel=floor_rel)


def whiten_cholesky(cov, *, jitter_rel: float = 0.0):
    """Cholesky whitening matrix ``W = L⁻¹`` with ``C + j I = L Lᵀ``, ``j = jitter_rel · tr(C)/d``.

    Float32-safe (no eigensolver; TPU friendly). A non-SPD ``cov`` (or NaN input) gives NaN, as
    ``jnp.linalg.cholesky`` does; add ``jitter_rel`` for PSD-but-singular covariances.

    Args:
      cov: ``(..., d, d)`` SPD covariance (only the lower triangle is read by the factorisation).
      jitter_rel: static relative diagonal jitter.

    Returns:
      ``(..., d, d)`` lower-triangular ``W`` with ``W C Wᵀ = I`` and ``Wᵀ W = C⁻¹``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import whiten_cholesky
      >>> c = jnp.array([[2.0, 0.5], [0.5, 1.0]])
      >>> w = whiten_cholesky(c)
      >>> bool(jnp.allclose(w @ c @ w.T, jnp.eye(2), atol=1e-5))
      True
    """
    cov = check_square(cov, "cov", kind="floating")
    chol = cholesky_factor(cov, jitter_rel=jitter_rel)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    return jax.scipy.linalg.solve_triangular(chol, jnp.broadcast_to(eye, cov.shape), lower=True)
