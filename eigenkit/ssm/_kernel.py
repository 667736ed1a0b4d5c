"""Discretisation and the S4D convolution kernel (S4D paper Sec. 3, eqs. (4)–(5); official ``SSMKernelDiag``)."""

from __future__ import annotations

import enum
import math

import jax
import jax.numpy as jnp
from jax import lax

from eigenkit._validate import _shape_str, check_array, check_positive, check_rank_arg
from eigenkit.ssm._phase import phase

_HIGHEST = lax.Precision.HIGHEST


class Discretization(enum.Enum):
    """How the continuous ``(A, B)`` become ``(Ā, B̄)`` for step size ``dt`` (S4D paper Sec. 3.1).

    * ``ZOH``: ``Ā = exp(dt·A)``, ``B̄ = (exp(dt·A) - 1)/A · B``.
    * ``BILINEAR``: ``Ā = (1 + dt·A/2)/(1 - dt·A/2)``, ``B̄ = dt/(1 - dt·A/2) · B``.
    """

    ZOH = "zoh"
    BILINEAR = "bilinear"


class KernelMethod(enum.Enum):
    """How the Vandermonde product ``2·Re Σ_n w_n exp(x_n·l)`` is evaluated.

    * ``NAIVE``: materialises the ``(..., N/2, L)`` complex Vandermonde matrix (the official fallback); float32 phases
      computed as plain products. Reference and benchmark baseline.
    * ``CHUNKED``: ``l = q·T + r``; two small real Vandermonde factors ``(N, L/T)`` and ``(N, T)`` contracted by one
      batched GEMM — O(N·(L/T + T)) memory in forward *and* backward, float32-safe phases (see ``_phase.py``).
    """

    NAIVE = "naive"
    CHUNKED = "chunked"


def _real_dtype(x) -> jnp.dtype:
    return jnp.finfo(x.dtype).dtype


def _check_inexact_pair(x, name):
    dt = jnp.dtype(x.dtype)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64), jnp.dtype(jnp.complex64), jnp.dtype(jnp.complex128)):
        raise TypeError(f"{name} must be float32/float64 or complex64/complex128, got {dt}")


def _expm1_complex(z_re, z_im):
    """``exp(z) - 1`` without cancellation for small ``|z|`` (real arithmetic)."""
    re = jnp.expm1(z_re) * jnp.cos(z_im) - 2.0 * jnp.sin(0.5 * z_im) ** 2
    im = jnp.exp(z_re) * jnp.sin(z_im)
    return lax.complex(re, im)


def discretize(
    A: jax.Array, B: jax.Array, dt: jax.Array, discretization: Discretization = Discretization.ZOH
) -> tuple[jax.Array, jax.Array]:
    """Discretise a diagonal SSM (S4D paper Sec. 3.1).

    Args:
      A: complex ``(H, N/2)`` (or ``(N/2,)``, broadcast over H).
      B: complex, broadcastable with ``A``.
      dt: real ``(H,)`` step sizes (positive).
      discretization: :class:`Discretization`.

    Returns:
      ``(Ā, B̄)``, complex ``(H, N/2)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import discretize
      >>> Ab, Bb = discretize(jnp.array([[-0.5 + 1j]], jnp.complex64), jnp.ones((1, 1), jnp.complex64),
      ...                     jnp.array([0.1], jnp.float32))
      >>> Ab.shape
      (1, 1)
    """
    A, B, dt = _check_abdt(A, B, dt)
    z = dt[:, None].astype(A.dtype) * A
    if discretization is Discretization.ZOH:
        e = _expm1_complex(dt[:, None] * A.real, dt[:, None] * A.imag)
        return jnp.exp(z), B * e / A
    if discretization is Discretization.BILINEAR:
        den = 1.0 - z / 2.0
        return (1.0 + z / 2.0) / den, B * dt[:, None].astype(A.dtype) / den
    raise TypeError(f"discretization must be an eigenkit.ssm.Discretization, got {discretization!r}")


def _check_abdt(A, B, dt):
    A = check_array(A, "A", ndim=(1, 2), kind="complex")
    dt = check_array(dt, "dt", ndim=1, kind="floating")
    check_positive(dt, "dt")
    if _real_dtype(A) != dt.dtype:
        raise TypeError(f"A ({A.dtype}) and dt ({dt.dtype}) must have matching precision")
    if A.ndim == 2 and A.shape[0] != dt.shape[0]:
        raise ValueError(f"A has H = {A.shape[0]} rows but dt has shape {tuple(dt.shape)}; expected ({A.shape[0]},)")
    if B is not None:
        B = check_array(B, "B", ndim=(1, 2), kind="complex")
        if B.dtype != A.dtype:
            raise TypeError(f"B ({B.dtype}) and A ({A.dtype}) must have the same dtype")
        if B.shape[-1] != A.shape[-1]:
            raise ValueError(f"B must have N/2 = {A.shape[-1]} modes like A, got shape {tuple(B.shape)}")
    A = jnp.broadcast_to(A, (dt.shape[0], A.shape[-1]))
    if B is not None:
        B = jnp.broadcast_to(B, A.shape)
    return A, B, dt


def default_chunk(length: int) -> int:
    """Chunk ``T`` for :attr:`KernelMethod.CHUNKED`: a power of two near ``sqrt(L)`` (balances both factors).

    Args:
      length: kernel length ``L >= 1``.

    Returns:
      Python int ``T``.

    Example:
      >>> from eigenkit.ssm import default_chunk
      >>> default_chunk(1024)
      32"""
    return max(1, 2 ** int(round(math.log2(max(1, length)) / 2)))


def _vandermonde_naive(w, x_re, x_im, length):
    ell = jnp.arange(length, dtype=x_re.dtype)
    z = lax.complex(x_re, x_im)[..., None] * ell.astype(w.dtype)  # (H, N2, L) complex
    return 2.0 * jnp.einsum("...hn,hnl->...hl", w, jnp.exp(z), precision=_HIGHEST).real


def _vandermonde_chunked(w, x_re, u, v, length, chunk):
    t = chunk
    q = -(-length // t)
    rdt = x_re.dtype
    r_idx = jnp.arange(t, dtype=rdt)
    q_idx = jnp.arange(q, dtype=rdt) * float(t)
    th_r = phase(u, v, t, 1)  # (H, N2, T)
    th_q = phase(u, v, q, t)  # (H, N2, Q)
    mag_r = jnp.exp(x_re[..., None] * r_idx)
    mag_q = jnp.exp(x_re[..., None] * q_idx)
    r_re, r_im = mag_r * jnp.cos(th_r), mag_r * jnp.sin(th_r)
    z_re, z_im = mag_q * jnp.cos(th_q), mag_q * jnp.sin(th_q)
    w_re, w_im = w.real[..., None], w.imag[..., None]
    p_re = w_re * z_re - w_im * z_im  # (..., H, N2, Q)
    p_im = w_re * z_im + w_im * z_re
    lhs = jnp.concatenate([p_re, -p_im], axis=-2)  # (..., H, 2·N2, Q)
    rhs = jnp.concatenate([r_re, r_im], axis=-2)  # (H, 2·N2, T)
    k = jnp.einsum("...hnq,hnr->...hqr", lhs, rhs, precision=_HIGHEST)
    k = 2.0 * k.reshape(k.shape[:-2] + (q * t,))
    return k[..., :length]


def vandermonde(
    w: jax.Array,
    x: jax.Array,
    length: int,
    *,
    method: KernelMethod = KernelMethod.CHUNKED,
    chunk: int | None = None,
) -> jax.Array:
    """Conjugate-symmetric Vandermonde product ``K_l = 2·Re Σ_n w_n exp(x_n·l)``, ``l = 0..L-1``.

    Args:
      w: complex ``(..., H, N/2)`` weights (leading axes: channels).
      x: complex ``(H, N/2)`` log-poles (``Re x < 0`` for a stable kernel).
      length: ``L`` (static).
      method: :class:`KernelMethod`.
      chunk: ``T`` for the chunked method (default :func:`default_chunk`).

    Returns:
      real ``(..., H, L)`` of the real dtype of ``w``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import vandermonde
      >>> vandermonde(jnp.ones((1, 2), jnp.complex64), jnp.array([[-0.5, -1 + 1j]], jnp.complex64), 3).shape
      (1, 3)
    """
    w = check_array(w, "w", min_ndim=2, kind="complex")
    x = check_array(x, "x", ndim=2, kind="complex")
    if w.dtype != x.dtype:
        raise TypeError(f"w ({w.dtype}) and x ({x.dtype}) must have the same dtype")
    if w.shape[-2:] != x.shape:
        raise ValueError(f"w must have shape (..., H, N/2) = (..., {x.shape[0]}, {x.shape[1]}), got {tuple(w.shape)}")
    length = check_rank_arg(length, "length", upper=2**31, upper_name="2**31")
    if method is KernelMethod.NAIVE:
        return _vandermonde_naive(w, x.real, x.imag, length)
    chunk = default_chunk(length) if chunk is None else check_rank_arg(chunk, "chunk", upper=2**20, upper_name="2**20")
    one = jnp.ones((), dtype=x.real.dtype)
    return _vandermonde_chunked(w, x.real, x.imag, one, length, chunk)


def ssm_kernel(
    A: jax.Array,
    B: jax.Array | None,
    C: jax.Array,
    dt: jax.Array,
    length: int,
    *,
    discretization: Discretization = Discretization.ZOH,
    method: KernelMethod = KernelMethod.CHUNKED,
    chunk: int | None = None,
) -> jax.Array:
    """The S4D convolution kernel ``K = (C̄ B̄, C̄ Ā B̄, ..., C̄ Ā^{L-1} B̄)`` with ``2·Re`` readout.

    ZOH (S4D paper eq. (5) with Vandermonde form Sec. 3.2):
    ``K_l = 2·Re Σ_n C_n B_n (exp(dt A_n) - 1)/A_n · exp(dt A_n l)``.
    Bilinear: ``K_l = 2·Re Σ_n C_n B_n dt/(1 - dt A_n/2) · Ā_n^l`` with ``Ā^l = exp(l·log Ā)``.

    In float32 with :attr:`KernelMethod.CHUNKED`, the phases ``dt·Im(A_n)·l`` are formed exactly from ``dt`` and
    ``Im A`` and reduced modulo 2π in fixed point (ZOH); for bilinear the phase of ``log Ā`` is rounded once.

    Args:
      A: complex ``(H, N/2)`` or ``(N/2,)`` (shared across H); ``Re A < 0``.
      B: complex broadcastable to ``A``, or ``None`` for ``B = 1`` (B folded into C, as the minimal official S4D).
      C: complex ``(H, N/2)`` or ``(c, H, N/2)`` (c output channels, e.g. 2 for bidirectional).
      dt: real ``(H,)`` positive step sizes, same precision as ``A``.
      length: ``L`` (static).
      discretization: :class:`Discretization`.
      method, chunk: see :func:`vandermonde`.

    Returns:
      real ``(H, L)`` or ``(c, H, L)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.ssm import Init, diag_init
      >>> from eigenkit.ssm import ssm_kernel
      >>> A, B = diag_init(Init.LIN, 8)
      >>> C = jnp.ones((2, 4), jnp.complex64)
      >>> ssm_kernel(A, B, C, jnp.array([0.01, 0.1], jnp.float32), 16).shape
      (2, 16)
    """
    _check_inexact_pair(A, "A")
    C = check_array(C, "C", ndim=(2, 3), kind="complex")
    dt_arr = check_array(dt, "dt", ndim=1, kind="floating")
    if dt_arr.shape[0] != C.shape[-2]:
        raise ValueError(f"dt must have shape (H,) = ({C.shape[-2]},) with H = C.shape[-2], "
                         f"got {_shape_str(dt_arr.shape)}")
    A, B, dt = _check_abdt(A, B, dt)
    if C.dtype != A.dtype:
        raise TypeError(f"C ({C.dtype}) and A ({A.dtype}) must have the same dtype")
    if C.shape[-2:] != A.shape:
        raise ValueError(f"C must have shape (..., H, N/2) = (..., {A.shape[0]}, {A.shape[1]}), got {tuple(C.shape)}")
    length = check_rank_arg(length, "length", upper=2**31, upper_name="2**31")
    cb = C if B is None else C * B
    dtc = dt[:, None]
    if discretization is Discretization.ZOH:
        w = cb * _expm1_complex(dtc * A.real, dtc * A.imag) / A
        x_re = dtc * A.real
        u, v = jnp.broadcast_to(dtc, A.shape), A.imag
    elif discretization is Discretization.BILINEAR:
        z = dtc.astype(A.dtype) * A
        den = 1.0 - z / 2.0
        w = cb * dtc.astype(A.dtype) / den
        logab = jnp.log1p(z / 2.0) - jnp.log1p(-z / 2.0)
        x_re = logab.real
        u, v = logab.imag, jnp.ones_like(logab.imag)
    else:
        raise TypeError(f"discretization must be an eigenkit.ssm.Discretization, got {discretization!r}")
    if method is KernelMethod.NAIVE:
        return _vandermonde_naive(w, x_re, u * v, length)
    if method is not KernelMethod.CHUNKED:
        raise TypeError(f"method must be an eigenkit.ssm.KernelMethod, got {method!r}")
    chunk = default_chunk(length) if chunk is None else check_rank_arg(chunk, "chunk", upper=2**20, upper_name="2**20")
    return _vandermonde_chunked(w, x_re, u, v, length, chunk)

