"""PCA as pure functions on an immutable state.

Conventions (sklearn-compatible): data ``x: (n, d)`` rows are samples; ``explained_variance = s² / (n − 1)``;
``components: (k, d)`` rows are orthonormal principal axes, **sign: the largest-|entry| of each component is
positive** (primitives.md §2; the h-space code instead makes the first entry positive — flip if you need that).
Whitening divides scores by ``sqrt(explained_variance)`` (unit-variance scores, ddof = 1).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array, check_rank_arg
from eigenkit.linalg._svd import _sign_fix_rows

__all__ = ["PCAMethod", "PCAState", "pca_fit", "pca_inverse_transform", "pca_transform"]


class PCAMethod(enum.Enum):
    """How :func:`pca_fit` diagonalises the centred data ``X_c``.

    * ``SVD``: thin SVD of ``X_c`` (most accurate, ``O(n d min(n, d))``).
    * ``GRAM``: ``eigh`` of the ``n × n`` Gram ``X_c X_cᵀ = U S² Uᵀ``; ``components = S⁻¹ Uᵀ X_c`` — the Gram trick
      for ``n ≪ d`` (h-space per-timestep PCA, Haas et al. 2024 §IV-A).
    * ``COVARIANCE``: ``eigh`` of the ``d × d`` scatter ``X_cᵀ X_c`` (``d ≪ n``).
    * ``AUTO``: ``GRAM`` if ``n < d`` else ``COVARIANCE``.

    The eigh paths square the condition number: components with ``s_i / s_1 ≲ sqrt(eps)`` are inaccurate in float32.
    """

    AUTO = "auto"
    SVD = "svd"
    GRAM = "gram"
    COVARIANCE = "covariance"


class PCAState(NamedTuple):
    """Fitted PCA (a pytree of arrays; pass it through ``jit``/``vmap``).

    Attributes:
      mean: ``(d,)`` data mean (zeros if fitted with ``center=False``).
      components: ``(k, d)`` orthonormal principal axes (rows), by decreasing variance.
      explained_variance: ``(k,)`` ``s_i² / (n − 1)``.
      singular_values: ``(k,)`` singular values ``s_i`` of the centred data.
      total_variance: ``()`` ``‖X_c‖_F² / (n − 1)`` (for explained-variance ratios).
    """

    mean: jax.Array
    components: jax.Array
    explained_variance: jax.Array
    singular_values: jax.Array
    total_variance: jax.Array


def pca_fit(x, k: int, *, center: bool = True, method: PCAMethod = PCAMethod.AUTO) -> PCAState:
    """Fit a rank-``k`` PCA to ``x``.

    Args:
      x: ``(n, d)`` real floating data, ``n >= 2``.
      k: static number of components, ``1 <= k <= min(n, d)``.
      center: subtract the mean (static).
      method: :class:`PCAMethod`.

    Returns:
      :class:`PCAState`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import pca_fit, pca_transform
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> st = pca_fit(x, 2)
      >>> pca_transform(st, x).shape
      (50, 2)
    """
    x = check_array(x, "x", ndim=2, kind="floating")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"x must have at least 2 samples (rows), got shape ({n}, {d})")
    k = check_rank_arg(k, "k", upper=min(n, d), upper_name="min(n, d)")
    if not isinstance(method, PCAMethod):
        raise TypeError(f"method must be a PCAMethod member, got {method!r}")
    mean = jnp.mean(x, axis=0) if center else jnp.zeros((d,), x.dtype)
    xc = x - mean
    if method is PCAMethod.AUTO:
        method = PCAMethod.GRAM if n < d else PCAMethod.COVARIANCE
    if method is PCAMethod.SVD:
        _, s, vh = jnp.linalg.svd(xc, full_matrices=False)
        s, comps = s[:k], vh[:k]
    elif method is PCAMethod.GRAM:
        w, u = jnp.linalg.eigh(xc @ xc.T)
        w, u = w[::-1][:k], u[:, ::-1][:, :k]
        s = jnp.sqrt(jnp.maximum(w, 0))
        comps = (u.T @ xc) / jnp.where(s > 0, s, 1)[:, None]
    else:
        w, v = jnp.linalg.eigh(xc.T @ xc)
        w, v = w[::-1][:k], v[:, ::-1][:, :k]
        s, comps = jnp.sqrt(jnp.maximum(w, 0)), v.T
    _, comps = _sign_fix_rows(jnp.zeros((1, k), x.dtype), comps)
    var = s**2 / (n - 1)
    return PCAState(mean, comps, var, s, jnp.sum(xc**2) / (n - 1))


def _scale(state: PCAState):
    ev = state.explained_variance
    return jnp.sqrt(jnp.where(ev > 0, ev, 1))


def pca_transform(state: PCAState, x, *, whiten: bool = False):
    """Scores ``(x − mean) Cᵀ`` (``/ sqrt(explained_variance)`` if ``whiten``; zero-variance axes are not scaled).

    Args:
      state: :class:`PCAState`.
      x: ``(..., d)`` data.
      whiten: static flag.

    Returns:
      ``(..., k)`` scores.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import pca_fit, pca_transform
      >>> x = jax.random.normal(jax.random.key(0), (50, 4)) * jnp.array([3.0, 1.0, 0.1, 0.1])
      >>> state = pca_fit(x, 2)
      >>> pca_transform(state, x).shape, pca_transform(state, x[0]).shape
      ((50, 2), (2,))
    """
    x = check_array(x, "x", min_ndim=1, shape=(state.components.shape[-1],), kind="floating")
    y = (x - state.mean) @ state.components.T
    return y / _scale(state) if whiten else y


def pca_inverse_transform(state: PCAState, y, *, whiten: bool = False):
    """Back to data space: ``y C + mean`` (undoing the whitening first if ``whiten``).

    Args:
      state: :class:`PCAState`.
      y: ``(..., k)`` scores.
      whiten: static flag (must match the one used in :func:`pca_transform`).

    Returns:
      ``(..., d)`` reconstruction (the projection of ``x`` onto the principal subspace).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import pca_fit, pca_inverse_transform, pca_transform
      >>> x = jax.random.normal(jax.random.key(0), (50, 2)) @ jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
      >>> state = pca_fit(x, 2)  # rank-2 data: exact reconstruction
      >>> bool(jnp.allclose(pca_inverse_transform(state, pca_transform(state, x, whiten=True), whiten=True), x,
      ...                   atol=1e-4))
      True
    """
    y = check_array(y, "y", min_ndim=1, shape=(state.components.shape[0],), kind="floating")
    if whiten:
        y = y * _scale(state)
    return y @ state.components + state.mean
