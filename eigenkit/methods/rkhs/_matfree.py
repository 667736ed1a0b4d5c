"""Matrix-free products with the i.i.d.-masking kernel (Zhai et al., ICLR 2024, eq. 2 of ``_kernels``).

``K(x_i, x_j) = Π_t (α + V(1−α) 1[x_it = x_jt])`` depends on a pair only through its agreement count ``h``, so
``K = T[h]`` with the ``L + 1`` values ``T[h] = (α + V(1−α))^h α^(L−h)``. :func:`masking_kernel_matvec` forms
``K v`` one ``(block_size, n)`` row slab at a time (agreement counts by a one-hot matmul, as
``rkhs.masking_kernel``, then a table look-up) inside ``lax.map``, so the ``n × n`` kernel never exists; with it,
``eigenkit.linalg.lobpcg_eigh`` finds the top-d eigenspace of the kernel of the whole ``2^L`` cube in
``O(block_size · n)`` memory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_array, check_rank_arg

__all__ = ["masking_kernel_matvec"]


def masking_kernel_matvec(x, v, alpha, vocab_size: int = 2, block_size: int = 1024):
    """``K v`` for the i.i.d.-masking kernel ``K = rkhs.masking_kernel(x, x, alpha, vocab_size)``, never forming K.

    Rows of ``K`` are built ``block_size`` at a time inside ``jax.lax.map`` (agreement counts ``h`` by a one-hot
    matmul, then ``K = (α + V(1−α))^h α^(L−h)`` by look-up in a table of ``L + 1`` values) and contracted with
    ``v`` at once: at most a ``(block_size, n)`` slab of the kernel exists at a time, also under ``jax.grad`` (the
    block is rematerialised, not stored, for the backward pass). ``n`` need not be a multiple of ``block_size``
    (the last block is padded and the padding sliced off). Linear in ``v``: ``jax.grad`` / ``jax.vjp`` in ``v``
    give ``Kᵀ u = K u``; it is also differentiable in a traced ``alpha``.

    Args:
      x: int ``(n, L)`` token ids in ``[0, vocab_size)`` (the points; the kernel is between ``x`` and itself).
      v: floating ``(n,)`` or ``(n, k)``; the product is computed in ``v``'s dtype.
      alpha: mask probability per token, ``0 <= alpha <= 1`` (checked when concrete; may be traced under ``jit``).
      vocab_size: ``V``, a static Python int ``>= 1`` (it sets the one-hot width; pass it as a static argument
        under ``jit``).
      block_size: rows of ``K`` per block, a static Python int ``>= 1`` (clipped to ``n``); peak kernel memory is
        ``min(block_size, n) · n`` entries of ``v.dtype``.

    Returns:
      ``K v`` with the shape and dtype of ``v``.

    Raises:
      ValueError: ``x`` not 2-D, ``v`` not ``(n,)`` / ``(n, k)`` with ``n = x.shape[0]``, ``alpha`` outside
        ``[0, 1]``, ``vocab_size`` or ``block_size`` below 1.
      TypeError: ``x`` not integer, ``v`` not floating, ``vocab_size`` / ``block_size`` not Python ints.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import masking_kernel, masking_kernel_matvec
      >>> x = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]])
      >>> v = jnp.array([1.0, 0.0, 0.0, -1.0])
      >>> masking_kernel_matvec(x, v, 0.5, block_size=3).tolist()   # 3 rows per block: n = 4 is padded to 6
      [2.0, 0.0, 0.0, -2.0]
      >>> bool(jnp.allclose(masking_kernel_matvec(x, v, 0.5), masking_kernel(x, x, 0.5) @ v))
      True
    """
    x = check_array(x, "x", ndim=2, kind="integer")
    n, length = x.shape
    v = check_array(v, "v", ndim=(1, 2), kind="floating")
    if v.shape[0] != n:
        raise ValueError(f"v must have shape ({n},) or ({n}, k) with n = x.shape[0] = {n}, got {tuple(v.shape)}")
    vocab_size = check_rank_arg(vocab_size, "vocab_size", upper=np.iinfo(np.int32).max, upper_name="int32 max")
    block_size = check_rank_arg(block_size, "block_size", upper=np.iinfo(np.int32).max, upper_name="int32 max")
    if not isinstance(alpha, jax.core.Tracer) and not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    dtype = v.dtype
    vec = v.ndim == 1
    vm = v[:, None] if vec else v
    if n == 0:
        return v
    block = min(block_size, n)
    n_blocks = -(-n // block)
    # kernel value per agreement count h = 0..L (the same power formula as masking_kernel)
    a = jnp.asarray(alpha).astype(dtype)
    h = jnp.arange(length + 1, dtype=dtype)
    table = jnp.power(a + vocab_size * (1.0 - a), h) * jnp.power(a, length - h)
    # one-hot rows (n, L V) in float32: agreement counts <= L are exact integers in any float type
    onehot = jax.nn.one_hot(x, vocab_size, dtype=jnp.float32).reshape(n, length * vocab_size)
    rows = jnp.pad(onehot, ((0, n_blocks * block - n), (0, 0))).reshape(n_blocks, block, length * vocab_size)

    @jax.checkpoint  # recompute the (block, n) slab in the backward pass instead of saving n_blocks of them
    def one_block(rows_b):
        agree = (rows_b @ onehot.T).astype(jnp.int32)                # (block, n) agreement counts in 0..L
        return jnp.take(table, agree, mode="clip") @ vm              # (block, k)

    out = jax.lax.map(one_block, rows).reshape(n_blocks * block, vm.shape[1])[:n]
    return out[:, 0] if vec else out
