"""Truncated and randomized SVD of dense matrices.

Both return ``(u, s, vh)`` like ``jnp.linalg.svd(full_matrices=False)``, truncated to ``k``, with the sign
convention **largest-|entry| of each right singular vector (row of ``vh``) positive** (``u`` flipped with it), so
results are comparable across algorithms and backends (primitives.md §2). Inside (near-)degenerate singular
values only the subspace is defined: compare ``s``, ``u diag(s) vh`` or projectors, not single vectors.
Gradients flow through ``jnp.linalg.svd``/``qr`` (JAX's exact rules: NaN/inf for repeated singular values).
NaN input propagates to NaN output.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array, check_key, check_rank_arg

__all__ = ["randomized_svd", "truncated_svd"]


def _sign_fix_rows(u, vh):
    idx = jnp.argmax(jnp.abs(vh), axis=-1)
    sgn = jnp.sign(jnp.take_along_axis(vh, idx[..., None], axis=-1))[..., 0]
    sgn = jnp.where(sgn == 0, 1, sgn).astype(vh.dtype)
    return u * sgn[..., None, :], vh * sgn[..., :, None]


def truncated_svd(m, k: int):
    """Top-``k`` singular triplets of a dense ``(..., M, N)`` matrix from a full thin SVD.

    Args:
      m: ``(..., M, N)`` real floating matrix.
      k: static rank, ``1 <= k <= min(M, N)``.

    Returns:
      ``(u, s, vh)``: ``(..., M, k)``, ``(..., k)`` descending, ``(..., k, N)``; ``m ≈ u diag(s) vh`` (Eckart–Young).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import truncated_svd
      >>> u, s, vh = truncated_svd(jnp.diag(jnp.array([3.0, 1.0, 2.0])), 2)
      >>> s.tolist()
      [3.0, 2.0]
    """
    m = check_array(m, "m", min_ndim=2, kind="floating")
    k = check_rank_arg(k, "k", upper=min(m.shape[-2:]), upper_name="min(M, N)")
    u, s, vh = jnp.linalg.svd(m, full_matrices=False)
    u, vh = _sign_fix_rows(u[..., :, :k], vh[..., :k, :])
    return u, s[..., :k], vh


def randomized_svd(m, k: int, *, key: jax.Array, oversample: int = 10, n_iter: int = 2):
    """Randomized rank-``k`` SVD (Halko, Martinsson & Tropp 2011, Alg. 4.4 + 5.1) of an ``(M, N)`` matrix.

    With ``l = min(k + oversample, M, N)`` and Gaussian ``Ω: (N, l)``:
    ``Q = qr(M Ω)``; ``n_iter`` times ``Q = qr(Mᵀ Q)``, ``Q = qr(M Q)`` (power iterations with QR
    re-orthogonalisation, Alg. 4.4); ``B = Qᵀ M = Ũ S Vᵀ`` (``l × N``), ``U = Q Ũ``; truncate to ``k``.
    Expected error ``≈ (1 + ...) σ_{k+1}`` improves as ``(σ_{k+1}/σ_k)^{2·n_iter+1}`` (Halko eq. 10.10 / Cor. 10.10).
    Cost ``O(MN l (2 n_iter + 2))`` vs ``O(MN min(M,N))`` for the full SVD.

    Args:
      m: ``(M, N)`` real floating matrix (``vmap`` for batches).
      k: static rank, ``1 <= k <= min(M, N)``.
      key: ``jax.random.key`` for the test matrix ``Ω``.
      oversample: static extra columns ``p`` (Halko recommends 5–10).
      n_iter: static number of power iterations ``q``.

    Returns:
      ``(u, s, vh)`` as :func:`truncated_svd`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import randomized_svd
      >>> a = jax.random.normal(jax.random.key(0), (40, 5)) @ jax.random.normal(jax.random.key(1), (5, 30))
      >>> u, s, vh = randomized_svd(a, 5, key=jax.random.key(2))
      >>> bool(jnp.allclose(u * s @ vh, a, atol=1e-3))
      True
    """
    m = check_array(m, "m", ndim=2, kind="floating")
    key = check_key(key)
    rows, cols = m.shape
    k = check_rank_arg(k, "k", upper=min(rows, cols), upper_name="min(M, N)")
    oversample = check_rank_arg(oversample, "oversample", lower=0, upper=1 << 30, upper_name="2**30")
    n_iter = check_rank_arg(n_iter, "n_iter", lower=0, upper=1 << 30, upper_name="2**30")
    l = min(k + oversample, rows, cols)
    omega = jax.random.normal(key, (cols, l), m.dtype)
    q, _ = jnp.linalg.qr(m @ omega)

    def power(_, q):
        z, _ = jnp.linalg.qr(m.T @ q)
        q, _ = jnp.linalg.qr(m @ z)
        return q

    q = jax.lax.fori_loop(0, n_iter, power, q)
    ub, s, vh = jnp.linalg.svd(q.T @ m, full_matrices=False)
    u, vh = _sign_fix_rows((q @ ub)[:, :k], vh[:k])
    return u, s[:k], vh
