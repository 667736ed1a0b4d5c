"""Pure SPE primitives: the basis-invariant spectral tensor and LapPE sign flips (no Flax, no state)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from eigenkit._validate import check_array

__all__ = ["basis_invariant_tensor", "random_sign_flip"]


def basis_invariant_tensor(
    eigvecs: Float[Array, "... n d"], weights: Float[Array, "... d m"]
) -> Float[Array, "... n n m"]:
    """``W[..., :, :, ℓ] = V diag(Z[:, ℓ]) Vᵀ`` — the input of SPE's ρ (Huang et al. 2024, eq. 2 / Def. 3.1).

    With ``Z[:, ℓ] = φ_ℓ(λ)`` this depends on the eigenvectors only through the spectral projectors
    ``Σ_{i∈eigenspace} v_i v_iᵀ`` whenever φ_ℓ gives equal values to equal eigenvalues (true for elementwise φ), so it
    is invariant to sign flips and to any orthogonal change of basis inside a repeated eigenspace. Padded eigenpairs
    (zero columns of ``V``) contribute nothing. Batch-polymorphic over leading axes.

    Args:
      eigvecs: ``[..., n, d]`` eigenvectors (columns).
      weights: ``[..., d, m]`` per-eigenvalue weights ``φ_ℓ(λ_i)``.

    Returns:
      ``[..., n, n, m]`` (same dtype as the inputs; mixed float dtypes raise under strict promotion).

    Example:
      >>> import jax.numpy as jnp
      >>> V = jnp.eye(3)[:, :2]
      >>> basis_invariant_tensor(V, jnp.ones((2, 1)))[..., 0].tolist()
      [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    eigvecs = check_array(eigvecs, "eigvecs", min_ndim=2, kind="floating")
    weights = check_array(weights, "weights", min_ndim=2, kind="floating")
    if weights.shape[-2] != eigvecs.shape[-1]:
        raise ValueError(
            f"weights must have shape (..., d, m) with d = eigvecs.shape[-1] = {eigvecs.shape[-1]}, "
            f"got {weights.shape}"
        )
    return jnp.einsum("...nd,...md,...dl->...nml", eigvecs, eigvecs, weights)


def random_sign_flip(eigvecs: Float[Array, "... n d"], *, key: jax.Array) -> Float[Array, "... n d"]:
    """Multiply each eigenvector (column) by an independent random sign — the LapPE training augmentation
    (Dwivedi et al. 2020). Leading axes get independent signs.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> v = random_sign_flip(jnp.ones((3, 2)), key=jax.random.key(0))
      >>> bool(jnp.all(jnp.abs(v) == 1.0))
      True
    """
    eigvecs = check_array(eigvecs, "eigvecs", min_ndim=2, kind="floating")
    shape = eigvecs.shape[:-2] + (1, eigvecs.shape[-1])
    sign = jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(eigvecs.dtype)
    return eigvecs * sign
