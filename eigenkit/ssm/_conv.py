"""Convolution mode and recurrent mode of a diagonal SSM layer (S4D paper Sec. 3; official ``FFTConv`` / ``step``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from eigenkit._validate import check_array

_HALF = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def _check_u(u, *, half: bool = False):
    u = check_array(u, "u", ndim=2, kind="floating")
    allowed = (jnp.float32, jnp.float64) + (_HALF if half else ())
    if u.dtype not in allowed:
        raise TypeError(f"u must be {' or '.join(str(jnp.dtype(d)) for d in allowed)}, got {u.dtype}")
    return u


def conv_dtype(dtype) -> jnp.dtype:
    """The dtype :func:`fft_conv` computes in for inputs of ``dtype``: float32 for bfloat16 / float16 (the FFT and
    the kernel stay in float32 inside half-precision models), else ``dtype``.

    Args:
      dtype: the dtype of the input sequence ``u``.

    Returns:
      ``float32`` for a half-precision ``dtype``, else ``dtype`` itself.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import conv_dtype
      >>> conv_dtype(jnp.bfloat16), conv_dtype(jnp.float64)
      (dtype('float32'), dtype('float64'))
    """
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in _HALF else dtype


def bidirectional_kernel(k_fwd: jax.Array, k_bwd: jax.Array) -> jax.Array:
    """Two-sided kernel of length ``2L`` as the official ``FFTConv``: ``[k_fwd, 0_L] + [0_L, reverse(k_bwd)]``.

    Used circularly with FFT length ``2L`` (:func:`fft_conv`), this gives
    ``y_t = Σ_{s<=t} k_fwd[t-s] u_s + Σ_{s>t} k_bwd[s-t-1] u_s``: the backward branch starts at **lag -1** with
    ``k_bwd[0]`` and has no lag-0 term (the deliberate off-by-one of the official code, reproduced exactly);
    ``k_bwd[L-1]`` is never used.

    Args:
      k_fwd, k_bwd: real ``(H, L)``.

    Returns:
      real ``(H, 2L)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import bidirectional_kernel
      >>> bidirectional_kernel(jnp.ones((1, 2)), 2 * jnp.ones((1, 2)))
      Array([[1., 1., 2., 2.]], dtype=float32)
    """
    k_fwd = check_array(k_fwd, "k_fwd", ndim=2, kind="floating")
    k_bwd = check_array(k_bwd, "k_bwd", ndim=2, kind="floating")
    if k_fwd.shape != k_bwd.shape or k_fwd.dtype != k_bwd.dtype:
        raise ValueError(
            f"k_fwd and k_bwd must have equal shape and dtype, got {tuple(k_fwd.shape)} {k_fwd.dtype} "
            f"and {tuple(k_bwd.shape)} {k_bwd.dtype}"
        )
    return jnp.concatenate([k_fwd, k_bwd[:, ::-1]], axis=-1)


def fft_conv(u: jax.Array, k: jax.Array, d: jax.Array | None = None) -> jax.Array:
    """``y = irfft(rfft(u, 2L) · rfft(k, 2L))[:L] + D·u`` per channel (official ``FFTConv``).

    With a causal kernel of length ``L`` this is the causal convolution ``y_t = Σ_{s<=t} k[t-s] u_s + D u_t``
    (S4D paper eq. (4)); with a two-sided kernel of length ``2L`` from :func:`bidirectional_kernel` it is the
    bidirectional layer.

    Args:
      u: real ``(L, H)`` (one sequence; ``vmap`` over a batch).
      k: real ``(H, L)`` (causal) or ``(H, 2L)`` (two-sided), dtype of ``u``; for a bfloat16 / float16 ``u`` also
        float32 (mixed precision: the kernel stays in float32).
      d: optional real ``(H,)`` skip ``D``, dtype as ``k``.

    Returns:
      real ``(L, H)``, dtype of ``u``. Half-precision inputs are convolved in float32 (:func:`conv_dtype`; an FFT
      of length 2L in bfloat16 would lose the kernel's tail) and the result cast back.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import fft_conv
      >>> fft_conv(jnp.ones((3, 1)), jnp.array([[1.0, 0.5, 0.25]])).ravel()
      Array([1.  , 1.5 , 1.75], dtype=float32)
    """
    u = _check_u(u, half=True)
    out_dtype, cdt = u.dtype, conv_dtype(u.dtype)
    length, h = u.shape
    k = check_array(k, "k", ndim=2, kind="floating")
    if k.dtype not in (u.dtype, cdt):
        raise TypeError(f"k ({k.dtype}) and u ({u.dtype}) must have the same dtype"
                        + (f" (or k {cdt} for a {u.dtype} u)" if cdt != u.dtype else ""))
    u, k = u.astype(cdt), k.astype(cdt)
    if k.shape[0] != h or k.shape[1] not in (length, 2 * length):
        raise ValueError(
            f"k must have shape (H, L) = ({h}, {length}) or (H, 2L) = ({h}, {2 * length}) for u of shape "
            f"(L, H) = {tuple(u.shape)}, got {tuple(k.shape)}"
        )
    n = 2 * length
    uf = jnp.fft.rfft(u, n=n, axis=0)
    kf = jnp.fft.rfft(k, n=n, axis=-1).T
    y = jnp.fft.irfft(uf * kf, n=n, axis=0)[:length].astype(cdt)
    if d is not None:
        d = check_array(d, "d", shape=(h,), ndim=1, kind="floating")
        if d.dtype not in (out_dtype, cdt):
            raise TypeError(f"d ({d.dtype}) and u ({out_dtype}) must have the same dtype")
        y = y + u * d.astype(cdt)
    return y.astype(out_dtype)


def _check_step_params(A_bar, B_bar, C, D):
    A_bar = check_array(A_bar, "A_bar", ndim=2, kind="complex")
    B_bar = check_array(B_bar, "B_bar", shape=A_bar.shape, ndim=2, kind="complex")
    C = check_array(C, "C", shape=A_bar.shape, ndim=2, kind="complex")
    if not A_bar.dtype == B_bar.dtype == C.dtype:
        raise TypeError(f"A_bar, B_bar, C must share one complex dtype, got {A_bar.dtype}, {B_bar.dtype}, {C.dtype}")
    if D is not None:
        D = check_array(D, "D", shape=(A_bar.shape[0],), ndim=1, kind="floating")
    return A_bar, B_bar, C, D


def step(
    A_bar: jax.Array, B_bar: jax.Array, C: jax.Array, D: jax.Array | None, state: jax.Array, u_k: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One recurrent step ``x_k = Ā x_{k-1} + B̄ u_k``, ``y_k = 2·Re(C x_k) + D u_k`` (S4D paper eq. (3)).

    Args:
      A_bar, B_bar: complex ``(H, N/2)`` from :func:`eigenkit.ssm.discretize`.
      C: complex ``(H, N/2)``.
      D: real ``(H,)`` or ``None``.
      state: complex ``(H, N/2)`` (the discretised state, carried explicitly).
      u_k: real ``(H,)``.

    Returns:
      ``(y_k, next_state)``: real ``(H,)`` and complex ``(H, N/2)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import step
      >>> a = jnp.full((1, 1), 0.5 + 0j, jnp.complex64); c = jnp.ones((1, 1), jnp.complex64)
      >>> y, s = step(a, c, c, None, jnp.zeros((1, 1), jnp.complex64), jnp.ones((1,), jnp.float32))
      >>> y
      Array([2.], dtype=float32)
    """
    A_bar, B_bar, C, D = _check_step_params(A_bar, B_bar, C, D)
    h = A_bar.shape[0]
    state = check_array(state, "state", shape=A_bar.shape, ndim=2, kind="complex")
    u_k = check_array(u_k, "u_k", shape=(h,), ndim=1, kind="floating")
    if jnp.finfo(A_bar.dtype).dtype != u_k.dtype:
        raise TypeError(f"u_k ({u_k.dtype}) must match the precision of A_bar ({A_bar.dtype})")
    return _step(A_bar, B_bar, C, D, state, u_k)


def _step(A_bar, B_bar, C, D, state, u_k):
    nxt = A_bar * state + B_bar * u_k[:, None].astype(B_bar.dtype)
    y = 2.0 * jnp.sum((C * nxt).real, axis=-1)
    if D is not None:
        y = y + D * u_k
    return y.astype(u_k.dtype), nxt


def recurrence(
    A_bar: jax.Array,
    B_bar: jax.Array,
    C: jax.Array,
    D: jax.Array | None,
    u: jax.Array,
    state: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Run :func:`step` over a sequence with ``lax.scan`` (recurrent / autoregressive mode).

    Args:
      A_bar, B_bar, C, D: as :func:`step`.
      u: real ``(L, H)``.
      state: initial complex ``(H, N/2)`` state (zeros if ``None``).

    Returns:
      ``(y, final_state)``: real ``(L, H)`` and complex ``(H, N/2)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.ssm import recurrence
      >>> a = jnp.full((1, 1), 0.5 + 0j, jnp.complex64); c = jnp.ones((1, 1), jnp.complex64)
      >>> recurrence(a, c, c, None, jnp.ones((3, 1), jnp.float32))[0].ravel()
      Array([2. , 3. , 3.5], dtype=float32)
    """
    A_bar, B_bar, C, D = _check_step_params(A_bar, B_bar, C, D)
    u = _check_u(u)
    if u.shape[1] != A_bar.shape[0]:
        raise ValueError(f"u must have shape (L, H) with H = {A_bar.shape[0]}, got {tuple(u.shape)}")
    if jnp.finfo(A_bar.dtype).dtype != u.dtype:
        raise TypeError(f"u ({u.dtype}) must match the precision of A_bar ({A_bar.dtype})")
    if state is None:
        state = jnp.zeros(A_bar.shape, A_bar.dtype)
    else:
        state = check_array(state, "state", shape=A_bar.shape, ndim=2, kind="complex")

    def body(s, u_k):
        y, s = _step(A_bar, B_bar, C, D, s, u_k)
        return s, y

    final, y = lax.scan(body, state, u)
    return y, final
