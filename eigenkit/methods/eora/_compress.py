"""Weight compressors for EoRA's experiments, as pure functions on one ``(d_out, d_in)`` weight.

* :func:`rtn_quantize` — round-to-nearest k-bit asymmetric min-max quantisation, per output row and per group of
  ``group_size`` input columns (NVlabs ``quant.Quantizer`` with ``perchannel=True, sym=False``).
* :func:`gptq_quantize` — GPTQ (Frantar et al. 2023, Alg. 1): column-by-column quantisation with the optimal-brain-
  surgeon update ``W[:, j>i] -= (w_i − q_i)/[H⁻¹]_ii · [H⁻¹]_{i, j>i}`` using the upper Cholesky factor of the damped
  inverse Hessian ``H = 2 XᵀX/n``; lazy blocked updates (``block_size``), optional activation order (columns sorted by
  decreasing ``diag H``), dead inputs (``H_ii = 0``) zeroed.
* :func:`sparsegpt_prune` — SparseGPT n:m (Frantar & Alistarh 2023): the same sweep where, at the first column of
  every group of ``m``, the ``n`` entries per row with the smallest ``w² / [H⁻¹]_ii²`` are pruned; with ``bits`` the
  surviving weights are quantised in the same sweep (the official "GPTQ 4-bit + SparseGPT 2:4").
* :func:`magnitude_prune_nm`, :func:`wanda_prune_nm` — one-shot n:m masks from ``|W|`` and ``|W| · ‖x_j‖``.
* :func:`compress_weight` — dispatch on a :class:`CompressionSpec` (quantiser × pruner), used by the driver.

Scale of the Hessian does not matter (damping is relative to ``mean(diag H)``), so the EoRA covariance ``S`` can be
passed as ``hessian``. Masks are returned as ``keep`` (``True`` where the weight survives).
"""

from __future__ import annotations

import dataclasses
import enum

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from eigenkit._validate import check_array, check_square


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be a Python int in [1, 16], got {bits!r}")


def quant_params(
    w: Float[Array, "rows g"], bits: int
) -> tuple[Float[Array, " rows"], Float[Array, " rows"]]:
    """Asymmetric min-max grid per row: ``scale = (max − min)/(2^bits − 1)``, ``zero = round(−min/scale)``, with the
    range widened to include 0 and an all-zero row mapped to ``[−1, 1]`` (as ``quant.Quantizer.find_params``)."""
    maxq = 2**bits - 1
    xmin = jnp.minimum(jnp.min(w, axis=-1), 0.0)
    xmax = jnp.maximum(jnp.max(w, axis=-1), 0.0)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = jnp.where(both0, -1.0, xmin)
    xmax = jnp.where(both0, 1.0, xmax)
    scale = (xmax - xmin) / maxq
    zero = jnp.round(-xmin / scale)
    return scale, zero


def quantize_dequantize(x, scale, zero, bits: int):
    """``scale · (clip(round(x/scale) + zero, 0, 2^bits − 1) − zero)`` (broadcasting)."""
    q = jnp.clip(jnp.round(x / scale) + zero, 0, 2**bits - 1)
    return scale * (q - zero)


def rtn_quantize(w: Float[Array, "d_out d_in"], bits: int, *, group_size: int = -1) -> Float[Array, "d_out d_in"]:
    """Round-to-nearest ``bits``-bit asymmetric quantisation (dequantised back to ``w.dtype``).

    Args:
      w: ``(d_out, d_in)`` weight.
      bits: static bit width (1..16).
      group_size: input columns per quantisation group; ``-1`` = one group per row.

    Example:
      >>> w = jnp.array([[0.0, 1.0, 2.0, 3.0]])
      >>> rtn_quantize(w, 2).tolist()
      [[0.0, 1.0, 2.0, 3.0]]
    """
    w = check_array(w, "w", ndim=2, kind="floating")
    _check_bits(bits)
    d_out, d_in = w.shape
    g = d_in if group_size == -1 else group_size
    if g < 1 or d_in % g:
        raise ValueError(f"group_size must be -1 or divide d_in = {d_in}, got {group_size}")
    wg = w.reshape(d_out, d_in // g, g)
    scale, zero = quant_params(wg, bits)
    return quantize_dequantize(wg, scale[..., None], zero[..., None], bits).reshape(d_out, d_in)


def _hinv_upper(h, percdamp):
    """Upper Cholesky factor ``U`` of ``(H + damp·I)⁻¹ = Uᵀ U``."""
    d = h.shape[0]
    damp = percdamp * jnp.mean(jnp.diagonal(h))
    h = h + damp * jnp.eye(d, dtype=h.dtype)
    chol = jnp.linalg.cholesky(h)
    hinv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(d, dtype=h.dtype))
    return jnp.linalg.cholesky(hinv).T


def _stable_ranks(score):
    """Rank of each entry along the last axis (0 = smallest; ties by position), as ``argsort(argsort(score))``
    with a stable sort, but by ``m × m`` comparisons (small ``m``: much faster than two sorts on CPU)."""
    m = score.shape[-1]
    a, b = score[..., :, None], score[..., None, :]  # a: entry j, b: entry k
    before = jnp.arange(m)[None, :] < jnp.arange(m)[:, None]  # k < j
    return jnp.sum((b < a) | ((b == a) & before), axis=-1)


def _obs_sweep(w, hinv_u, *, bits, group_size, row_params, prune_nm, fixed_keep, block_size):
    """The GPTQ / SparseGPT column sweep. Returns (compressed weight, keep mask)."""
    rows, cols = w.shape
    out, keeps = [], []
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        count = i2 - i1
        w1 = w[:, i1:i2]
        h1 = hinv_u[i1:i2, i1:i2]
        hdiag = jnp.diagonal(h1)
        if bits is not None:
            if group_size == -1:
                scale, zero = row_params
                scale = jnp.broadcast_to(scale[:, None], (rows, count))
                zero = jnp.broadcast_to(zero[:, None], (rows, count))
            else:  # parameters from the block's columns at block start (official non-static groups)
                s, z = quant_params(w1.reshape(rows, count // group_size, group_size), bits)
                scale = jnp.repeat(s, group_size, axis=1)
                zero = jnp.repeat(z, group_size, axis=1)
        keep1 = jnp.ones((rows, count), bool) if fixed_keep is None else fixed_keep[:, i1:i2]

        def body(i, carry, h1=h1, hdiag=hdiag, scale=scale if bits is not None else None,
                 zero=zero if bits is not None else None):
            w1, q1, err1, keep1 = carry
            col = w1[:, i]
            d = h1[i, i]
            if prune_nm is not None:
                n, m = prune_nm
                start = i - i % m
                blk = jax.lax.dynamic_slice(w1, (0, start), (rows, m))
                dd = jax.lax.dynamic_slice(hdiag, (start,), (m,))
                score = blk**2 / (dd**2)[None, :]
                keep1 = jax.lax.cond(
                    i % m == 0,
                    lambda k: jax.lax.dynamic_update_slice(k, _stable_ranks(score) >= n, (0, start)),
                    lambda k: k,
                    keep1,
                )
            q = jnp.where(keep1[:, i], col, 0.0)
            if bits is not None:
                q = quantize_dequantize(q, scale[:, i], zero[:, i], bits)
            err = (col - q) / d
            w1 = w1 - err[:, None] * h1[i][None, :]
            return w1, q1.at[:, i].set(q), err1.at[:, i].set(err), keep1

        zeros = jnp.zeros((rows, count), w.dtype)
        _, q1, err1, keep1 = jax.lax.fori_loop(0, count, body, (w1, zeros, zeros, keep1))
        out.append(q1)
        keeps.append(keep1)
        if i2 < cols:
            w = w.at[:, i2:].add(-(err1 @ hinv_u[i1:i2, i2:]))
    return jnp.concatenate(out, axis=1), jnp.concatenate(keeps, axis=1)


def _prepare(w, hessian, percdamp, act_order):
    w = check_array(w, "w", ndim=2, kind="floating")
    hessian = check_square(hessian, "hessian", kind="floating")
    if hessian.shape != (w.shape[1], w.shape[1]):
        raise ValueError(f"hessian must have shape (d_in, d_in) = ({w.shape[1]}, {w.shape[1]}), got {hessian.shape}")
    h = hessian.astype(w.dtype)
    dead = jnp.diagonal(h) == 0
    h = h + jnp.diag(dead.astype(h.dtype))
    w_live = jnp.where(dead[None, :], 0.0, w)
    perm = jnp.argsort(-jnp.diagonal(h)) if act_order else None
    if perm is not None:
        w_live = w_live[:, perm]
        h = h[perm][:, perm]
    return w_live, _hinv_upper(h, percdamp), perm


def gptq_quantize(
    w: Float[Array, "d_out d_in"],
    hessian: Float[Array, "d_in d_in"],
    bits: int,
    *,
    group_size: int = -1,
    act_order: bool = True,
    block_size: int = 128,
    percdamp: float = 0.01,
    keep: Bool[Array, "d_out d_in"] | None = None,
) -> Float[Array, "d_out d_in"]:
    """GPTQ ``bits``-bit asymmetric quantisation (Frantar et al. 2023, Alg. 1; NVlabs ``GPTQ.fasterquant``).

    Args:
      w: ``(d_out, d_in)`` weight.
      hessian: ``(d_in, d_in)`` PSD proxy Hessian ``∝ XᵀX`` (any positive scale).
      bits: static bit width.
      group_size: ``-1`` (per row, the EoRA default) or a divisor of ``block_size`` (parameters per group, taken from
        the block at its start, as the official non-static groups).
      act_order: quantise columns in order of decreasing ``diag H`` (``--act-order``).
      block_size: lazy-update block width (128).
      percdamp: damping ``percdamp · mean(diag H)`` added to ``H``.
      keep: optional fixed sparsity mask (``True`` = keep): pruned entries are forced to 0 and their error is
        compensated like quantisation error (used for "magnitude/Wanda 2:4 + GPTQ").

    Returns:
      The dequantised weight, ``(d_out, d_in)``.

    Example:
      >>> w = jax.random.normal(jax.random.key(0), (4, 8))
      >>> x = jax.random.normal(jax.random.key(1), (32, 8))
      >>> gptq_quantize(w, x.T @ x, 3).shape
      (4, 8)
    """
    _check_bits(bits)
    w0 = check_array(w, "w", ndim=2, kind="floating")
    if group_size != -1 and (group_size < 1 or block_size % group_size or w0.shape[1] % group_size):
        raise ValueError(f"group_size must be -1 or divide block_size = {block_size} and d_in, got {group_size}")
    row_params = quant_params(w0, bits)  # per-row grid from the original weight (as find_params before the sweep)
    w_live, hu, perm = _prepare(w0, hessian, percdamp, act_order)
    if keep is not None:
        keep = check_array(keep, "keep", shape=w0.shape, kind="bool")
        keep = keep[:, perm] if perm is not None else keep
    q, _ = _obs_sweep(w_live, hu, bits=bits, group_size=group_size, row_params=row_params, prune_nm=None,
                      fixed_keep=keep, block_size=block_size)
    if perm is not None:
        q = q[:, jnp.argsort(perm)]
    return q


def sparsegpt_prune(
    w: Float[Array, "d_out d_in"],
    hessian: Float[Array, "d_in d_in"],
    *,
    n: int = 2,
    m: int = 4,
    bits: int | None = None,
    block_size: int = 128,
    percdamp: float = 0.01,
) -> tuple[Float[Array, "d_out d_in"], Bool[Array, "d_out d_in"]]:
    """SparseGPT n:m pruning with optional joint quantisation (NVlabs ``SparseGPT.fasterprune``, ``prunen=n``,
    ``prunem=m``; no act-order, as the official code).

    Returns:
      ``(w_c, keep)``: compressed weight and mask (exactly ``m − n`` kept in every group of ``m`` columns per row).

    Example:
      >>> w = jax.random.normal(jax.random.key(0), (4, 8))
      >>> wc, keep = sparsegpt_prune(w, jnp.eye(8))
      >>> int(keep.sum())
      16
    """
    w0 = check_array(w, "w", ndim=2, kind="floating")
    if not (1 <= n < m) or block_size % m or w0.shape[1] % m:
        raise ValueError(f"need 1 <= n < m with m dividing block_size and d_in; got n={n}, m={m}, d_in={w0.shape[1]}")
    row_params = None
    if bits is not None:
        _check_bits(bits)
        row_params = quant_params(w0, bits)
    w_live, hu, _ = _prepare(w0, hessian, percdamp, False)
    return _obs_sweep(w_live, hu, bits=bits, group_size=-1, row_params=row_params, prune_nm=(n, m),
                      fixed_keep=None, block_size=block_size)


def _nm_keep(score, n, m):
    d_out, d_in = score.shape
    if not (1 <= n < m) or d_in % m:
        raise ValueError(f"need 1 <= n < m and m dividing d_in = {d_in}; got n={n}, m={m}")
    s = score.reshape(d_out, d_in // m, m)
    return (_stable_ranks(s) >= n).reshape(d_out, d_in)


def magnitude_prune_nm(
    w: Float[Array, "d_out d_in"], *, n: int = 2, m: int = 4
) -> tuple[Float[Array, "d_out d_in"], Bool[Array, "d_out d_in"]]:
    """n:m magnitude pruning: in each row, zero the ``n`` smallest ``|w|`` of every ``m`` consecutive inputs.

    Example:
      >>> magnitude_prune_nm(jnp.array([[1.0, -4.0, 2.0, 3.0]]))[0].tolist()
      [[0.0, -4.0, 0.0, 3.0]]
    """
    w = check_array(w, "w", ndim=2, kind="floating")
    keep = _nm_keep(jnp.abs(w), n, m)
    return jnp.where(keep, w, 0.0), keep


def wanda_prune_nm(
    w: Float[Array, "d_out d_in"], input_sq_norm: Float[Array, " d_in"], *, n: int = 2, m: int = 4
) -> tuple[Float[Array, "d_out d_in"], Bool[Array, "d_out d_in"]]:
    """Wanda n:m (Sun et al. 2024): score ``|W_ij| · ‖X_j‖₂``, prune the ``n`` lowest of every ``m`` inputs per row
    (NVlabs ``llama_sequential_wanda``; ``input_sq_norm`` ∝ ``diag(XᵀX)``, e.g. ``diag(S)``)."""
    w = check_array(w, "w", ndim=2, kind="floating")
    input_sq_norm = check_array(input_sq_norm, "input_sq_norm", shape=(w.shape[1],), ndim=1, kind="floating")
    keep = _nm_keep(jnp.abs(w) * jnp.sqrt(input_sq_norm.astype(w.dtype))[None, :], n, m)
    return jnp.where(keep, w, 0.0), keep


class Quantizer(enum.Enum):
    """Quantiser of a :class:`CompressionSpec`."""

    NONE = "none"
    RTN = "rtn"
    GPTQ = "gptq"


class Pruner(enum.Enum):
    """n:m pruner of a :class:`CompressionSpec`."""

    NONE = "none"
    MAGNITUDE = "magnitude"
    WANDA = "wanda"
    SPARSEGPT = "sparsegpt"


@dataclasses.dataclass(frozen=True)
class CompressionSpec:
    """A static compression recipe. Combinations: SparseGPT + (GPTQ or RTN) = the joint SparseGPT sweep with
    quantisation (official "GPTQ 4-bit + 2:4"); magnitude/Wanda + GPTQ = GPTQ with the fixed mask; + RTN = RTN of the
    pruned weight (zeros stay zero)."""

    quantizer: Quantizer = Quantizer.NONE
    bits: int = 4
    group_size: int = -1
    act_order: bool = True
    pruner: Pruner = Pruner.NONE
    n: int = 2
    m: int = 4
    block_size: int = 128
    percdamp: float = 0.01

    @property
    def label(self) -> str:
        parts = []
        if self.quantizer is not Quantizer.NONE:
            parts.append(f"{self.quantizer.value}{self.bits}")
        if self.pruner is not Pruner.NONE:
            parts.append(f"{self.pruner.value}{self.n}:{self.m}")
        return "+".join(parts) or "none"


def compress_weight(
    w: Float[Array, "d_out d_in"], cov: Float[Array, "d_in d_in"], spec: CompressionSpec
) -> Float[Array, "d_out d_in"]:
    """Compress one weight with the recipe ``spec`` (``cov`` = input covariance, used as the Hessian / Wanda norm)."""
    q, p = spec.quantizer, spec.pruner
    bits = None if q is Quantizer.NONE else spec.bits
    if p is Pruner.SPARSEGPT:
        return sparsegpt_prune(w, cov, n=spec.n, m=spec.m, bits=bits, block_size=spec.block_size,
                               percdamp=spec.percdamp)[0]
    keep = None
    if p is Pruner.MAGNITUDE:
        w, keep = magnitude_prune_nm(w, n=spec.n, m=spec.m)
    elif p is Pruner.WANDA:
        w, keep = wanda_prune_nm(w, jnp.diagonal(cov), n=spec.n, m=spec.m)
    if q is Quantizer.GPTQ:
        return gptq_quantize(w, cov, spec.bits, group_size=spec.group_size, act_order=spec.act_order,
                             block_size=spec.block_size, percdamp=spec.percdamp, keep=keep)
    if q is Quantizer.RTN:
        return rtn_quantize(w, spec.bits, group_size=spec.group_size)
    return w


__all__ = [
    "CompressionSpec",
    "Pruner",
    "Quantizer",
    "compress_weight",
    "gptq_quantize",
    "magnitude_prune_nm",
    "quant_params",
    "quantize_dequantize",
    "rtn_quantize",
    "sparsegpt_prune",
    "wanda_prune_nm",
]
