"""Top-k eigenpairs of large or matrix-free symmetric operators (no gradients through the iteration).

* :func:`subspace_iteration` — block power iteration with QR re-orthogonalisation and Rayleigh–Ritz, inside a
  ``lax.while_loop`` with a residual tolerance and an iteration cap (largest-*magnitude* eigenvalues).
* :func:`lobpcg_eigh` — wrapper over ``jax.experimental.sparse.linalg.lobpcg_standard`` (largest eigenvalues;
  smallest via a spectral shift), for operators given as functions ``v ↦ A v``.

Both take the operator as a function of one ``(n,)`` vector and apply it to blocks with ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse.linalg import lobpcg_standard

from eigenkit._validate import check_key, check_rank_arg
from eigenkit.linalg._eigh import Which, _check_which

__all__ = ["IterInfo", "lobpcg_eigh", "subspace_iteration"]


class IterInfo(NamedTuple):
    """Diagnostics of an iterative spectral solver.

    Attributes:
      iterations: ``()`` int32, iterations performed.
      residual: ``(k,)`` relative residual norms of the returned pairs (``‖A v − λ v‖ / max|λ|`` for eigenpairs,
        ``max(‖A v − σ u‖, ‖Aᵀ u − σ v‖) / σ_max`` for singular triplets).
      converged: ``()`` bool, ``max(residual) <= tol``.
    """

    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


def _default_tol(dtype) -> float:
    return float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def _block(matvec):
    return jax.vmap(matvec, in_axes=1, out_axes=1)


def _check_dtype(dtype) -> jnp.dtype:
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype (e.g. jnp.float32), got {dt}")
    return dt


def _check_operator(fn, name: str, n_in: int, in_name: str, dtype, n_out: int | None = None,
                    out_name: str = "n") -> int:
    """Trace ``fn`` on a ``(n_in,)`` vector (no FLOPs) and check it returns a vector of the expected size/dtype.

    Returns the output size. Raises a ``ValueError``/``TypeError`` naming ``fn`` and the sizes instead of a
    shape error from deep inside ``vmap``/``while_loop``.
    """
    if not callable(fn):
        raise TypeError(f"{name} must be a callable (a linear operator v -> A v), got {type(fn).__name__}")
    try:
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct((n_in,), dtype))
    except Exception as e:  # noqa: BLE001 - re-raised with the sizes that matter
        raise ValueError(f"{name} failed on a vector of shape ({n_in},) ({in_name} = {n_in}, dtype {dtype}); "
                         f"does {in_name} match the operator? ({type(e).__name__}: {e})") from e
    if not hasattr(out, "shape") or len(out.shape) != 1:
        raise ValueError(f"{name} must return a vector of shape ({out_name},), got "
                         f"{'shape ' + str(tuple(out.shape)) if hasattr(out, 'shape') else type(out).__name__}")
    if n_out is not None and out.shape[0] != n_out:
        raise ValueError(f"{name} must return shape ({out_name},) = ({n_out},), got ({out.shape[0]},); "
                         f"does {in_name} = {n_in} match the operator?")
    if out.dtype != dtype:
        raise TypeError(f"{name} must return the iteration dtype {dtype}, got {out.dtype}")
    return int(out.shape[0])


def subspace_iteration(
    matvec: Callable[[jax.Array], jax.Array],
    n: int,
    k: int,
    *,
    key: jax.Array,
    dtype=jnp.float32,
    oversample: int = 0,
    max_iter: int = 200,
    tol: float | None = None,
):
    """Largest-magnitude eigenpairs of a symmetric operator by block subspace iteration.

    Iteration (Saad, *Numerical Methods for Large Eigenvalue Problems*, Alg. 5.2): ``Y = A Q``;
    Rayleigh–Ritz ``H = Qᵀ Y = W Θ Wᵀ`` (sorted by ``|θ|`` descending); ``Q ← qr(Y W)``; stop when every
    relative residual ``‖A q_i − θ_i q_i‖ / |θ_1|`` of the first ``k`` Ritz pairs is ``<= tol`` or after
    ``max_iter`` iterations. Converges at rate ``|λ_{p+1}| / |λ_k|`` with ``p = k + oversample``.

    Args:
      matvec: ``(n,) -> (n,)`` action of a symmetric operator (must be traceable; applied to blocks via ``vmap``).
      n: static operator size.
      k: static number of eigenpairs, ``1 <= k``, ``k + oversample <= n``.
      key: ``jax.random.key`` for the random start block.
      dtype: dtype of the iteration (default float32).
      oversample: extra block columns (faster convergence).
      max_iter: iteration cap.
      tol: relative residual tolerance (default ``sqrt(finfo(dtype).eps)``).

    Returns:
      ``(w, v, info)``: ``w: (k,)`` eigenvalues by decreasing magnitude, ``v: (n, k)`` orthonormal eigenvectors,
      ``info``: :class:`IterInfo`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import subspace_iteration
      >>> a = jnp.diag(jnp.arange(1.0, 11.0))
      >>> w, v, info = subspace_iteration(lambda x: a @ x, 10, 2, key=jax.random.key(0), oversample=2)
      >>> [round(float(x), 3) for x in w]
      [10.0, 9.0]
    """
    n = check_rank_arg(n, "n", upper=np.iinfo(np.int32).max, upper_name="int32 max")
    k = check_rank_arg(k, "k", upper=n, upper_name="n")
    oversample = check_rank_arg(oversample, "oversample", lower=0, upper=n - k, upper_name="n - k")
    dtype = _check_dtype(dtype)
    key = check_key(key)
    _check_operator(matvec, "matvec", n, "n", dtype, n)
    p = k + oversample
    tol = _default_tol(dtype) if tol is None else float(tol)
    amul = _block(matvec)
    q0, _ = jnp.linalg.qr(jax.random.normal(key, (n, p), dtype))

    def ritz(q):
        y = amul(q)
        h = q.T @ y
        theta, w = jnp.linalg.eigh(h)
        order = jnp.argsort(-jnp.abs(theta))
        theta, w = theta[order], w[:, order]
        yw, qw = y @ w, q @ w
        res = jnp.linalg.norm(yw - qw * theta, axis=0) / jnp.maximum(jnp.abs(theta[0]), jnp.finfo(dtype).tiny)
        return theta, qw, yw, res

    def cond(state):
        it, _, _, _, res = state
        return (it < max_iter) & (jnp.max(res[:k]) > tol)

    def body(state):
        it, _, _, yw, _ = state
        q, _ = jnp.linalg.qr(yw)
        theta, qw, yw, res = ritz(q)
        return it + 1, theta, qw, yw, res

    theta, qw, yw, res = ritz(q0)
    it, theta, qw, _, res = jax.lax.while_loop(cond, body, (jnp.asarray(1, jnp.int32), theta, qw, yw, res))
    info = IterInfo(it, res[:k], jnp.max(res[:k]) <= tol)
    return theta[:k], qw[:, :k], info


def lobpcg_eigh(
    matvec: Callable[[jax.Array], jax.Array],
    n: int,
    k: int,
    *,
    key: jax.Array,
    which: Which = Which.LARGEST,
    dtype=jnp.float32,
    max_iter: int = 100,
    tol: float | None = None,
    upper_bound: float | None = None,
):
    """``k`` extreme eigenpairs of a symmetric operator via LOBPCG (``lobpcg_standard``, Knyazev 2001).

    ``which=Which.SMALLEST`` runs LOBPCG on the shifted operator ``c·I − A`` with ``c >= λ_max`` (``upper_bound``
    if given, e.g. 2 for a normalised Laplacian, else ``1.01·λ_max + tiny`` estimated by a first LOBPCG run with
    one vector); accuracy for small eigenvalues is then relative to ``c``. No gradients (LOBPCG has none).

    Args:
      matvec: ``(n,) -> (n,)`` symmetric operator action.
      n: static size; LOBPCG requires ``5·k < n``.
      k: static number of eigenpairs.
      key: ``jax.random.key`` for the start block.
      which: :class:`Which`.
      dtype: iteration dtype.
      max_iter: iteration cap (``m`` of ``lobpcg_standard``).
      tol: ``lobpcg_standard``'s tolerance (default: machine epsilon of ``dtype``).
      upper_bound: a bound ``>= λ_max`` for the ``SMALLEST`` shift.

    Returns:
      ``(w, v, info)``: ``w: (k,)`` descending for ``LARGEST``, ascending for ``SMALLEST``; ``v: (n, k)``
      orthonormal columns; ``info``: :class:`IterInfo` (as :func:`subspace_iteration`; ``converged`` uses the
      tolerance ``sqrt(finfo(dtype).eps)`` on the relative residual — earlier versions returned the bare
      iteration count here).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import lobpcg_eigh
      >>> a = jnp.diag(jnp.arange(1.0, 21.0))
      >>> w, v, _ = lobpcg_eigh(lambda x: a @ x, 20, 2, key=jax.random.key(0))
      >>> [round(float(x), 3) for x in w]
      [20.0, 19.0]
    """
    n = check_rank_arg(n, "n", upper=np.iinfo(np.int32).max, upper_name="int32 max")
    k = check_rank_arg(k, "k", upper=n, upper_name="n")
    if not 5 * k < n:
        raise ValueError(f"lobpcg_eigh needs 5 * k < n (lobpcg_standard limitation), got k = {k}, n = {n}; "
                         "use topk_eigh or subspace_iteration")
    _check_which(which)
    dtype = _check_dtype(dtype)
    key = check_key(key)
    _check_operator(matvec, "matvec", n, "n", dtype, n)
    amul = _block(matvec)
    k1, k2 = jax.random.split(key)
    x0 = jax.random.normal(k1, (n, k), dtype)
    def info(w, v, it):
        res = jnp.linalg.norm(amul(v) - v * w, axis=0) / jnp.maximum(jnp.max(jnp.abs(w)), jnp.finfo(dtype).tiny)
        return IterInfo(jnp.asarray(it, jnp.int32), res, jnp.max(res) <= check_tol)

    check_tol = _default_tol(dtype)
    if which is Which.LARGEST:
        w, v, it = lobpcg_standard(amul, x0, m=max_iter, tol=tol)
        return w, v, info(w, v, it)
    if upper_bound is None:
        lam, _, _ = lobpcg_standard(amul, jax.random.normal(k2, (n, 1), dtype), m=max_iter, tol=tol)
        c = jax.lax.stop_gradient(1.01 * jnp.abs(lam[0]) + jnp.finfo(dtype).tiny)
    else:
        c = jnp.asarray(upper_bound, dtype)

    def shifted(x):
        return c * x - amul(x)

    w, v, it = lobpcg_standard(shifted, x0, m=max_iter, tol=tol)
    return c - w, v, info(c - w, v, it)
