"""Sum over neighbours in a flat row layout: ``out[r] = Σ_k x[nbr[r, k]]`` with an exact, gather-only VJP.

Message passing on padded dense blocks (``A[b] @ X[b]``) costs ``O(B N² F)`` per layer whatever the graphs' real
sizes; a neighbour table costs ``O(R D F)`` for ``R`` real rows of maximum in-degree ``D``. On CPU, XLA lowers
``jax.ops.segment_sum`` (a scatter-add) to a serial loop, and so lowers the VJP of a plain gather; here the VJP is
the **transposed table** ``reverse`` gathered the same way, so forward and backward are both row gathers.

Tables come from an edge list of ``(dst, src)`` row pairs (``out[dst] += x[src]``) via :func:`neighbour_tables`
(host side, NumPy): ``neighbours[r]`` lists the sources of row ``r`` and ``reverse[s]`` the destinations of row
``s``, each padded with the sentinel ``R`` (a zero row), multiplicities kept (a repeated pair counts twice, as a
multi-edge in a dense adjacency).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from eigenkit._validate import check_array

__all__ = ["neighbour_sum", "neighbour_tables"]


def _gather_sum(x, table):
    xe = jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])
    out = jnp.zeros(x.shape, x.dtype) if table.shape[1] == 0 else xe[table[:, 0]]
    for k in range(1, table.shape[1]):  # one row gather per slot: cheaper on CPU than one [R, D, F] gather + sum
        out = out + xe[table[:, k]]
    return out


@jax.custom_vjp
def _neighbour_sum(x, neighbours, reverse):
    return _gather_sum(x, neighbours)


def _fwd(x, neighbours, reverse):
    return _gather_sum(x, neighbours), (neighbours, reverse)


def _bwd(res, g):
    neighbours, reverse = res
    return _gather_sum(g, reverse), None, None


_neighbour_sum.defvjp(_fwd, _bwd)


def neighbour_sum(x: Float[Array, "r ..."], neighbours: Int[Array, "r d"], reverse: Int[Array, "r d2"]
                  ) -> Float[Array, "r ..."]:
    """``out[r] = Σ_k x[neighbours[r, k]]`` (index ``R = x.shape[0]`` reads a zero row), i.e. ``out = A x`` for the
    sparse ``R × R`` matrix ``A[r, s]`` = multiplicity of ``s`` in ``neighbours[r]``.

    The VJP w.r.t. ``x`` is ``Aᵀ g``, computed as ``neighbour_sum(g, reverse, ·)``: exact if and only if
    ``reverse`` is the transpose table of ``neighbours`` (as :func:`neighbour_tables` builds them; not checked
    under ``jit``). Reverse mode only (a ``custom_vjp``: ``jax.jvp`` is not defined); higher-order reverse mode
    works (the backward pass is itself a gather-sum). No gradient flows to the integer tables.

    Args:
      x: ``[R, ...]`` rows (any trailing shape).
      neighbours: ``[R, D]`` int, sources of each row, padded with ``R``.
      reverse: ``[R, D']`` int, destinations of each row, padded with ``R``.

    Returns:
      ``[R, ...]``, dtype of ``x``.

    Raises:
      TypeError: ``x`` not floating or a table not integer.
      ValueError: a table not ``[R, D]``.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from eigenkit.graph import neighbour_sum, neighbour_tables
      >>> nbr, rev = neighbour_tables(np.array([0, 0, 1]), np.array([1, 2, 2]), 3)   # 0 ← 1, 0 ← 2, 1 ← 2
      >>> neighbour_sum(jnp.array([1.0, 10.0, 100.0]), nbr, rev).tolist()
      [110.0, 100.0, 0.0]
      >>> jax.grad(lambda x: neighbour_sum(x, nbr, rev)[0])(jnp.ones(3)).tolist()   # Aᵀ e_0
      [0.0, 1.0, 1.0]
    """
    x = check_array(x, "x", min_ndim=1, kind="floating")
    r = x.shape[0]
    for name, t in (("neighbours", neighbours), ("reverse", reverse)):
        t = check_array(t, name, ndim=2, kind="integer")
        if t.shape[0] != r:
            raise ValueError(f"{name} must have shape (R, D) with R = x.shape[0] = {r}, got {t.shape}")
    return _neighbour_sum(x, jnp.asarray(neighbours, jnp.int32), jnp.asarray(reverse, jnp.int32))


def neighbour_tables(dst: Int[np.ndarray, " m"], src: Int[np.ndarray, " m"], num_rows: int, *,
                     width: int | None = None, reverse_width: int | None = None
                     ) -> tuple[Int[np.ndarray, "r d"], Int[np.ndarray, "r d2"]]:
    """Host-side (NumPy): the padded tables of :func:`neighbour_sum` for the messages ``out[dst[i]] += x[src[i]]``.

    Args:
      dst, src: ``[M]`` int row indices in ``[0, num_rows)``.
      num_rows: ``R``; the padding sentinel is ``R``.
      width, reverse_width: table widths (default: the largest in- / out-count); a static budget so that batches of
        different graphs share one compiled shape. Smaller than needed raises.

    Returns:
      ``(neighbours [R, D], reverse [R, D'])``, int32.

    Raises:
      ValueError: mismatched or out-of-range indices, or a width below the largest count (names it).

    Example:
      >>> import numpy as np
      >>> from eigenkit.graph import neighbour_tables
      >>> nbr, rev = neighbour_tables(np.array([0, 0, 1]), np.array([1, 2, 2]), 3, width=2)
      >>> nbr.tolist(), rev.tolist()          # row 0 reads rows 1, 2; row 2 feeds rows 0, 1; sentinel 3
      ([[1, 2], [2, 3], [3, 3]], [[3, 3], [0, 3], [0, 1]])
    """
    dst, src = np.asarray(dst), np.asarray(src)
    if dst.ndim != 1 or src.shape != dst.shape:
        raise ValueError(f"dst and src must be 1-D of equal length, got shapes {dst.shape} and {src.shape}")
    if dst.size and not (np.issubdtype(dst.dtype, np.integer) and np.issubdtype(src.dtype, np.integer)):
        raise ValueError(f"dst and src must be integer arrays, got {dst.dtype} and {src.dtype}")
    if dst.size and (min(dst.min(), src.min()) < 0 or max(dst.max(), src.max()) >= num_rows):
        raise ValueError(f"dst and src must lie in [0, num_rows) = [0, {num_rows})")

    def table(rows, cols, w, name):
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        counts = np.bincount(rows, minlength=num_rows) if rows.size else np.zeros(num_rows, np.int64)
        need = int(counts.max()) if counts.size else 0
        w = need if w is None else int(w)
        if w < need:
            raise ValueError(f"{name}={w} is below the largest count {need} of the given messages")
        out = np.full((num_rows, w), num_rows, np.int32)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if counts.size else counts
        slot = np.arange(rows.size) - starts[rows]
        out[rows, slot] = cols
        return out

    return (table(dst, src, width, "width"), table(src, dst, reverse_width, "reverse_width"))
