"""Initialisations of diagonal state-space models (S4D paper, Gu et al. 2022, Sec. 4 and Table 1).

Convention used throughout :mod:`eigenkit.ssm` (the one of the official minimal ``models/s4/s4d.py``):

* the real SSM has state size ``N``; we keep ``N/2`` complex modes, one of each conjugate pair, and read out
  ``y = 2·Re(C x)``;
* ``A = -exp(log_A_real) + i·A_imag`` with ``A_imag >= 0`` (S4D-Lin: ``A_n = -1/2 + iπn``). The full official kernel
  ``SSMKernelDiag`` stores the opposite sign (``Im A <= 0``); conjugating ``(A, B, C)`` together maps one convention
  to the other without changing the kernel, because ``2·Re(conj z) = 2·Re z``.
"""

from __future__ import annotations

import enum
import math

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import check_rank_arg


class Init(enum.Enum):
    """Initialisation of the diagonal ``A`` (and ``B``) — S4D paper Sec. 4.

    * ``LIN``  (S4D-Lin, eq. (7)):  ``A_n = -1/2 + iπn``, ``B_n = 1``.
    * ``INV``  (S4D-Inv, eq. (6)):  ``A_n = -1/2 + i(N/π)(N/(2n+1) - 1)``, ``B_n = 1``.
    * ``LEGS`` (S4D-LegS, Sec. 4.1): eigenvalues of the normal part ``A_HiPPO + PPᵀ`` of HiPPO-LegS, ``B = V* B_HiPPO``
      (imaginary part clipped to ±2 as in the official code).
    * ``REAL`` (S4D-Real): ``A_n = -(n+1)``, ``B_n = 1``.
    """

    LIN = "lin"
    INV = "inv"
    LEGS = "legs"
    REAL = "real"


def _check_state_size(state_size: int) -> int:
    n = check_rank_arg(state_size, "state_size", upper=2**20, upper_name="2**20", lower=2)
    if n % 2:
        raise ValueError(
            f"state_size must be even (N/2 conjugate pairs are stored), got state_size = {n}"
        )
    return n


def _complex_dtype(dtype) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        return jnp.dtype(jnp.complex64)
    if dtype == jnp.float64:
        return jnp.dtype(jnp.complex128)
    raise TypeError(f"dtype must be float32 or float64, got {dtype}")


def hippo_legs(state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """HiPPO-LegS transition ``(A, B)`` in float64 NumPy (HiPPO paper eq. (2); S4 paper eq. (2)).

    ``A_nk = -sqrt(2n+1)·sqrt(2k+1)`` for ``n > k``, ``-(n+1)`` for ``n = k``, ``0`` above the diagonal;
    ``B_n = sqrt(2n+1)``.

    Args:
      state_size: ``N``.

    Returns:
      ``A`` of shape ``(N, N)`` and ``B`` of shape ``(N,)``, float64 NumPy (an init, computed once, eagerly).

    Example:
      >>> from eigenkit.ssm import hippo_legs
      >>> A, B = hippo_legs(4)
      >>> A.shape, B.shape
      ((4, 4), (4,))
    """
    n = check_rank_arg(state_size, "state_size", upper=2**16, upper_name="2**16")
    q = np.arange(n, dtype=np.float64)
    r = np.sqrt(2.0 * q + 1.0)
    a = -np.tril(np.outer(r, r), -1) - np.diag(q + 1.0)
    return a, r.copy()


def legs_normal_eig(state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the normal part of HiPPO-LegS (S4 paper Sec. 3.3, S4D-LegS).

    ``A_HiPPO + P Pᵀ`` with ``P_n = sqrt(n + 1/2)`` equals ``-I/2 + S`` with ``S`` skew-symmetric; its eigenvalues are
    ``-1/2 + iω`` with ``ω`` from a float64 ``eigh`` of the Hermitian ``-i·S``. We keep the ``N/2`` eigenvalues with
    negative imaginary part and ``B = V* B_HiPPO`` (imaginary part clipped to ``[-2, 2]``, official ``B_clip = 2``),
    in the official order, then conjugate both to our ``Im A >= 0`` convention.

    Args:
      state_size: even state size ``N``.

    Returns:
      ``A`` complex128 ``(N/2,)`` and ``B`` complex128 ``(N/2,)`` (NumPy).

    Example:
      >>> import numpy as np
      >>> from eigenkit.ssm import legs_normal_eig
      >>> A, B = legs_normal_eig(8)
      >>> A.shape, bool(np.allclose(A.real, -0.5)), bool(np.all(A.imag >= 0))
      ((4,), True, True)
    """
    n = _check_state_size(state_size)
    a, b = hippo_legs(n)
    p = np.sqrt(np.arange(n, dtype=np.float64) + 0.5)
    ap = a + np.outer(p, p)
    w_re = float(np.mean(np.diag(ap)))  # = -1/2
    skew = ap - w_re * np.eye(n)
    w_im, v = np.linalg.eigh(-1j * skew)  # Hermitian; eigenvalues come in ± pairs, ascending
    keep = np.argsort(w_im, kind="stable")[: n // 2]  # negative imaginary parts, as the official nplr keeps
    lam = w_re + 1j * w_im[keep]
    bb = v[:, keep].conj().T @ b.astype(np.complex128)
    bb = bb.real + 1j * np.clip(bb.imag, -2.0, 2.0)
    # conjugate (A, B) to our Im A >= 0 convention (kernel unchanged when C is conjugated too)
    lam, bb = np.conj(lam), np.conj(bb)
    return lam, bb


def diag_init(init: Init, state_size: int, *, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Deterministic ``(A, B)`` of a diagonal SSM, ``N/2`` complex modes (S4D paper Sec. 4).

    Args:
      init: an :class:`Init`.
      state_size: ``N`` (even): the real state size; ``N/2`` modes are returned.
      dtype: real dtype of the parameters (float32 -> complex64 output, float64 -> complex128).

    Returns:
      ``A`` and ``B``, complex ``(N/2,)``; ``Re A < 0`` and ``Im A >= 0``.

    Example:
      >>> from eigenkit.ssm import Init, diag_init
      >>> A, B = diag_init(Init.LIN, 4)
      >>> A
      Array([-0.5+0.j       , -0.5+3.1415927j], dtype=complex64)
    """
    if not isinstance(init, Init):
        raise TypeError(f"init must be an eigenkit.ssm.Init, got {init!r}")
    n = _check_state_size(state_size)
    cdt = _complex_dtype(dtype)
    k = np.arange(n // 2, dtype=np.float64)
    ones = np.ones(n // 2, dtype=np.complex128)
    if init is Init.LIN:
        a, b = -0.5 + 1j * math.pi * k, ones
    elif init is Init.INV:
        a, b = -0.5 + 1j * (n / math.pi) * (n / (2.0 * k + 1.0) - 1.0), ones
    elif init is Init.REAL:
        a, b = -(k + 1.0) + 0j, ones
    else:
        a, b = legs_normal_eig(n)
    return jnp.asarray(a, dtype=cdt), jnp.asarray(b, dtype=cdt)


def init_log_dt(
    shape, *, key: jax.Array, dt_min: float = 1e-3, dt_max: float = 1e-1, dtype=jnp.float32
) -> jax.Array:
    """``log dt ~ U[log dt_min, log dt_max]`` (S4D paper Sec. 4, official ``init_dt``).

    Args:
      shape: output shape, e.g. ``(H,)``.
      key: a ``jax.random.key``.
      dt_min, dt_max: range of ``dt`` (``0 < dt_min <= dt_max``).
      dtype: floating dtype.

    Returns:
      ``log dt`` of ``shape``.

    Example:
      >>> import jax
      >>> from eigenkit.ssm import init_log_dt
      >>> init_log_dt((3,), key=jax.random.key(0)).shape
      (3,)
    """
    if not 0.0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min = {dt_min}, dt_max = {dt_max}")
    return jax.random.uniform(
        key, tuple(shape), dtype=dtype, minval=math.log(dt_min), maxval=math.log(dt_max)
    )


def init_C(shape, *, key: jax.Array, dtype=jnp.float32) -> jax.Array:
    """Standard complex normal ``C``: ``E|C|² = 1`` (real and imaginary parts ``N(0, 1/2)``), as
    ``torch.randn(cfloat)``.

    Args:
      shape: output shape, e.g. ``(H, N/2)``.
      key: a ``jax.random.key``.
      dtype: real dtype of the parts (float32 → complex64, float64 → complex128).

    Returns:
      complex array of ``shape``.

    Example:
      >>> import jax
      >>> from eigenkit.ssm import init_C
      >>> init_C((2, 3), key=jax.random.key(0)).dtype
      dtype('complex64')
    """
    cdt = _complex_dtype(dtype)
    return jax.random.normal(key, tuple(shape), dtype=cdt)
