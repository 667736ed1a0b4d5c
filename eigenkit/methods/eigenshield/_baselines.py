"""Baselines at the same rank as a fitted EigenShield state, applied with the same
:func:`~eigenkit.methods.eigenshield.transform`: no defence, top-k PCA, a random ``k``-dimensional subspace."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eigenkit._validate import check_key
from eigenkit.methods.eigenshield._project import _parts
from eigenkit.methods.eigenshield._state import EigenShieldState, SubspaceProjection


def _first_k_mask(mask):
    k = jnp.sum(mask, dtype=jnp.int32)
    return jnp.arange(mask.shape[0], dtype=jnp.int32) < k


def no_defence(state: EigenShieldState | SubspaceProjection) -> SubspaceProjection:
    """Identity filter: ``U = I_d``, every column kept (``transform`` returns ``x`` up to round-off).

    Args:
      state: a fitted state (only its mean and dimension are used).

    Returns:
      :class:`SubspaceProjection` with a ``(d, d)`` basis.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, no_defence, transform
      >>> p = SubspaceProjection(jnp.ones(2), jnp.eye(2)[:, :1], jnp.array([True]))
      >>> transform(no_defence(p), jnp.array([3.0, -1.0])).tolist()
      [3.0, -1.0]
    """
    mean, basis, _ = _parts(state)
    d = mean.shape[0]
    return SubspaceProjection(mean, jnp.eye(d, dtype=basis.dtype), jnp.ones((d,), bool))


def pca_baseline(state: EigenShieldState | SubspaceProjection) -> SubspaceProjection:
    """Top-``k`` PCA projection, ``k = |𝒞|`` (the same rank as the defence): the ``k`` leading eigenvectors of the
    calibration covariance instead of the causal ones.

    Args:
      state: an :class:`EigenShieldState` (its basis holds the leading eigenvectors by decreasing eigenvalue).

    Returns:
      :class:`SubspaceProjection` with the state's basis and the first ``k`` columns kept.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, pca_baseline
      >>> p = SubspaceProjection(jnp.zeros(3), jnp.eye(3), jnp.array([False, True, True]))
      >>> pca_baseline(p).mask.tolist()
      [True, True, False]
    """
    mean, basis, mask = _parts(state)
    return SubspaceProjection(mean, basis, _first_k_mask(mask))


def random_baseline(state: EigenShieldState | SubspaceProjection, *, key: jax.Array) -> SubspaceProjection:
    """Random ``k``-dimensional projection, ``k = |𝒞|``: Haar-distributed orthonormal columns (QR of a Gaussian
    ``d × r`` matrix with the signs of ``diag(R)`` fixed), the first ``k`` kept; same mean as the state.

    Args:
      state: a fitted state.
      key: ``jax.random.key`` (seeded: the same key gives the same subspace).

    Returns:
      :class:`SubspaceProjection` with a ``(d, r)`` orthonormal basis.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, random_baseline
      >>> p = SubspaceProjection(jnp.zeros(4), jnp.eye(4)[:, :2], jnp.array([True, False]))
      >>> q = random_baseline(p, key=jax.random.key(0))
      >>> q.basis.shape, q.mask.tolist()
      ((4, 2), [True, False])
    """
    mean, basis, mask = _parts(state)
    key = check_key(key)
    if basis.shape[1] == 0:
        return SubspaceProjection(mean, basis, mask)
    g = jax.random.normal(key, basis.shape, basis.dtype)
    q, r = jnp.linalg.qr(g)
    sign = jnp.where(jnp.diagonal(r) < 0, -1, 1).astype(basis.dtype)
    return SubspaceProjection(mean, q * sign[None, :], _first_k_mask(mask))
