"""The defence at inference: projection of embeddings on the kept subspace (EigenShield abstract step 4;
``e' = μ + U_𝒞 U_𝒞ᵀ (e − μ)`` — the mean handling is reconstructed, see the package docstring)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from eigenkit._validate import check_array
from eigenkit.methods.eigenshield._state import EigenShieldState, SubspaceProjection


def _parts(state, dtype=None):
    if not isinstance(state, EigenShieldState | SubspaceProjection):
        raise TypeError(f"state must be an EigenShieldState or SubspaceProjection, got {type(state).__name__}")
    mean = check_array(state.mean, "state.mean", ndim=1, kind="floating")
    basis = check_array(state.basis, "state.basis", ndim=2, kind="floating")
    mask = check_array(state.mask, "state.mask", ndim=1, kind="bool")
    if basis.shape[0] != mean.shape[0] or mask.shape[0] != basis.shape[1]:
        raise ValueError(f"state fields disagree: mean {mean.shape}, basis {basis.shape}, mask {mask.shape}")
    dt = basis.dtype if dtype is None else dtype
    return mean.astype(dt), basis.astype(dt), mask


def transform(state: EigenShieldState | SubspaceProjection, x: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """Filter embeddings: ``e' = μ + U diag(m) Uᵀ (e − μ)`` over the last axis (paper: projection of the embeddings
    on the causal subspace, abstract step 4).

    Works on any leading shape — one embedding ``(d,)``, a batch ``(B, d)``, per-token ``(B, T, d)`` or pooled —
    and is linear (affine) in ``x``, so ``jax.grad`` / ``jvp`` through it are exact: an adaptive attack can
    differentiate through the defence (no BPDA needed). Masked-out columns contribute exactly 0; with an empty mask
    every embedding maps to ``μ``. The same function applies the baselines (:func:`no_defence`,
    :func:`pca_baseline`, :func:`random_baseline`).

    Args:
      state: :class:`EigenShieldState` or :class:`SubspaceProjection`.
      x: ``(..., d)`` embeddings (floating; the state is cast to ``x.dtype``).

    Returns:
      ``(..., d)`` filtered embeddings, dtype of ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, transform
      >>> p = SubspaceProjection(jnp.zeros(3), jnp.eye(3)[:, :2], jnp.array([True, False]))
      >>> transform(p, jnp.array([[1.0, 2.0, 3.0]])).tolist()
      [[1.0, 0.0, 0.0]]
    """
    x = check_array(x, "x", min_ndim=1, kind="floating")
    mean, basis, mask = _parts(state, x.dtype)
    if x.shape[-1] != mean.shape[0]:
        raise ValueError(f"x must have shape (..., d) with d = {mean.shape[0]} (the state's dimension), "
                         f"got {tuple(x.shape)}")
    coef = jnp.where(mask, (x - mean) @ basis, 0)
    return mean + coef @ basis.T


def projector(state: EigenShieldState | SubspaceProjection) -> Float[Array, "d d"]:
    """The orthogonal projector ``P = U diag(m) Uᵀ`` of the kept subspace (basis invariant: compare ``P``, not
    ``U``).

    Args:
      state: :class:`EigenShieldState` or :class:`SubspaceProjection`.

    Returns:
      ``(d, d)`` symmetric idempotent matrix of rank ``Σ m``, dtype of ``state.basis``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, projector
      >>> p = SubspaceProjection(jnp.zeros(2), jnp.eye(2), jnp.array([False, True]))
      >>> projector(p).tolist()
      [[0.0, 0.0], [0.0, 1.0]]
    """
    _, basis, mask = _parts(state)
    kept = jnp.where(mask, basis, 0)
    return kept @ kept.T


def causal_rank(state: EigenShieldState | SubspaceProjection) -> Int[Array, ""]:
    """Dimension ``|𝒞| = Σ m`` of the kept subspace.

    Args:
      state: :class:`EigenShieldState` or :class:`SubspaceProjection`.

    Returns:
      ``()`` int32.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eigenshield import SubspaceProjection, causal_rank
      >>> int(causal_rank(SubspaceProjection(jnp.zeros(2), jnp.eye(2), jnp.array([True, False]))))
      1
    """
    _, _, mask = _parts(state)
    return jnp.sum(mask, dtype=jnp.int32)
