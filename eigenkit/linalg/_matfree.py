"""Matrix-free top-k singular triplets of a linear map given as functions (e.g. a network Jacobian).

Used for image-specific Jacobian directions in diffusion h-space (Haas et al. 2024, arXiv 2303.11073, §IV-B,
Alg. 1: batched subspace iteration on ``JᵀJ`` with ``Jv`` by forward mode and ``Jᵀu`` by reverse mode).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_key, check_rank_arg
from eigenkit.linalg._topk import IterInfo, _block, _check_dtype, _check_operator, _default_tol

__all__ = ["jacobian_topk_svd", "matfree_svd"]


def _sign_fix_cols(u, v):
    """Flip each pair ``(u_i, v_i)`` so the largest-|entry| of ``v_i`` is positive."""
    idx = jnp.argmax(jnp.abs(v), axis=0)
    sgn = jnp.sign(v[idx, jnp.arange(v.shape[1])])
    sgn = jnp.where(sgn == 0, 1, sgn).astype(v.dtype)
    return u * sgn, v * sgn


def matfree_svd(
    matvec: Callable[[jax.Array], jax.Array],
    rmatvec: Callable[[jax.Array], jax.Array],
    n: int,
    k: int,
    *,
    key: jax.Array,
    dtype=jnp.float32,
    oversample: int = 4,
    max_iter: int = 100,
    tol: float | None = None,
):
    """Top-``k`` singular triplets of ``A: R^n → R^m`` from ``v ↦ A v`` and ``u ↦ Aᵀ u`` only.

    Block subspace iteration on ``AᵀA`` with QR re-orthogonalisation and a Rayleigh–Ritz step (Halko et al. 2011,
    Alg. 4.4 as an iteration; Haas et al. 2024, Alg. 1). With ``V`` orthonormal ``(n, p)``, ``p = k + oversample``:

        Y = A V = U_b S Wᵀ (thin SVD, p×p work)   →   Ritz triplets (U_b, S, V W)
        Z = Aᵀ U_b                                   →   residual_i = ‖Z_i − s_i (V W)_i‖ / s_1
        V ← qr(Z)                                   (span Z = span AᵀA V)

    inside a ``lax.while_loop`` until ``max(residual[:k]) <= tol`` or ``max_iter``. Since ``A (VW) = U_b S``
    exactly, this residual is the full triplet residual. Each iteration costs ``p`` matvecs and ``p`` rmatvecs
    (batched with ``vmap``). Convergence rate ``(σ_{p+1}/σ_k)²``. Not differentiable (use it for directions;
    differentiate basis-invariant quantities elsewhere).

    Args:
      matvec: ``(n,) -> (m,)`` linear map.
      rmatvec: ``(m,) -> (n,)`` its transpose.
      n: static input dimension.
      k: static number of triplets, ``1 <= k <= min(n, m)``; the block has ``min(k + oversample, m)`` columns.
      key: ``jax.random.key`` for the random start block.
      dtype: iteration dtype.
      oversample: extra block columns.
      max_iter: iteration cap.
      tol: relative residual tolerance (default ``sqrt(finfo(dtype).eps)``).

    Returns:
      ``(u, s, v, info)``: ``u: (m, k)``, ``s: (k,)`` descending, ``v: (n, k)`` (right singular vectors as
      *columns*; sign: largest-|entry| of each ``v_i`` positive, ``u_i`` flipped with it), ``info``:
      :class:`IterInfo`. Note: the dense :func:`truncated_svd` / :func:`randomized_svd` return ``vh`` as rows
      (NumPy); the matrix-free solvers return the iteration's column block, as :func:`subspace_iteration` and
      :func:`lobpcg_eigh` do (``vh = v.T``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import matfree_svd
      >>> a = jax.random.normal(jax.random.key(1), (30, 20))
      >>> u, s, v, info = matfree_svd(lambda x: a @ x, lambda y: a.T @ y, 20, 3, key=jax.random.key(0))
      >>> bool(jnp.allclose(s, jnp.linalg.svd(a, compute_uv=False)[:3], rtol=1e-3))
      True
    """
    n = check_rank_arg(n, "n", upper=np.iinfo(np.int32).max, upper_name="int32 max")
    k = check_rank_arg(k, "k", upper=n, upper_name="n")
    oversample = check_rank_arg(oversample, "oversample", lower=0, upper=n - k, upper_name="n - k")
    dtype = _check_dtype(dtype)
    key = check_key(key)
    m = _check_operator(matvec, "matvec", n, "n", dtype, out_name="m")
    k = check_rank_arg(k, "k", upper=m, upper_name="m (output dimension)")
    _check_operator(rmatvec, "rmatvec", m, "m (matvec's output size)", dtype, n)
    p = min(k + oversample, m)
    tol = _default_tol(dtype) if tol is None else float(tol)
    amul, atmul = _block(matvec), _block(rmatvec)
    tiny = jnp.finfo(dtype).tiny

    def ritz(v):
        y = amul(v)
        ub, s, wt = jnp.linalg.svd(y, full_matrices=False)
        vr = v @ wt.T
        z = atmul(ub)
        res = jnp.linalg.norm(z - vr * s, axis=0) / jnp.maximum(s[0], tiny)
        return ub, s, vr, z, res

    def cond(state):
        it, *_, res = state
        return (it < max_iter) & (jnp.max(res[:k]) > tol)

    def body(state):
        it, _, _, _, z, _ = state
        v, _ = jnp.linalg.qr(z)
        return (it + 1, *ritz(v))

    v0, _ = jnp.linalg.qr(jax.random.normal(key, (n, p), dtype))
    state = (jnp.asarray(1, jnp.int32), *ritz(v0))
    it, ub, s, vr, _, res = jax.lax.while_loop(cond, body, state)
    u, v = _sign_fix_cols(ub[:, :k], vr[:, :k])
    info = IterInfo(it, res[:k], jnp.max(res[:k]) <= tol)
    return u, s[:k], v, info


def jacobian_topk_svd(
    f: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    k: int,
    *,
    key: jax.Array,
    oversample: int = 4,
    max_iter: int = 100,
    tol: float | None = None,
):
    """Top-``k`` singular triplets of the Jacobian ``J = ∂f/∂x`` at ``x`` without materialising it.

    ``J v`` comes from ``jax.linearize`` (forward mode, linearisation reused across iterations) and ``Jᵀ u`` from
    one ``jax.vjp`` closure (reverse mode, residuals reused); both are ``vmap``-ed over the block. The right
    singular vectors are the input-space directions (h-space directions in Haas et al. 2024, §IV-B).

    Args:
      f: function of one array ``x`` (any shape) returning one array (any shape, same float dtype).
      x: ``x`` at which to linearise; its dtype sets the iteration dtype.
      k, key, oversample, max_iter, tol: see :func:`matfree_svd`.

    Returns:
      ``(u, s, v, info)`` as :func:`matfree_svd` with flattened vectors: ``u: (f(x).size, k)``,
      ``v: (x.size, k)`` (reshape a column with ``v[:, i].reshape(x.shape)``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import jacobian_topk_svd
      >>> w = jax.random.normal(jax.random.key(1), (16, 8))
      >>> f = lambda x: jnp.tanh(w @ x)
      >>> x = jnp.ones(8) * 0.1
      >>> u, s, v, info = jacobian_topk_svd(f, x, 2, key=jax.random.key(0))
      >>> ref = jnp.linalg.svd(jax.jacfwd(f)(x), compute_uv=False)[:2]
      >>> bool(jnp.allclose(s, ref, rtol=1e-3))
      True
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must have a floating dtype, got {x.dtype}")
    y, f_jvp = jax.linearize(f, x)
    if y.dtype != x.dtype:
        raise TypeError(f"f(x) must have the dtype of x ({x.dtype}), got {y.dtype}")
    _, f_vjp = jax.vjp(f, x)

    def matvec(v):
        return f_jvp(v.reshape(x.shape)).reshape(-1)

    def rmatvec(u):
        return f_vjp(u.reshape(y.shape))[0].reshape(-1)

    return matfree_svd(matvec, rmatvec, x.size, k, key=key, dtype=x.dtype, oversample=min(oversample, x.size - k),
                       max_iter=max_iter, tol=tol)
