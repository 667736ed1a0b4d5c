"""Float32-safe phases ``θ_l = u·v·l`` for Vandermonde kernels.

At long ``L`` the phases ``dt·Im(A)·l`` of an S4D kernel reach 1e4–1e6 rad. Computed naively in float32 they carry
an absolute error ``≈ |θ|·6e-8`` (1e-3–1e-1 rad). Here, for float32 inputs,

1. ``u·v`` is formed exactly as a double-float ``(hi, lo)`` (Dekker's TwoProduct with Veltkamp splitting);
2. ``u·v/(2π)`` is formed as a double-float and its *fractional part* converted to 32-bit fixed point ``F``
   (turns · 2³²); integer turns are dropped exactly;
3. ``F·l`` is an unsigned 32-bit product that wraps modulo 2³² — i.e. exact reduction modulo one turn;
4. the wrapped product is read as a signed turn in ``[-1/2, 1/2)`` and scaled to radians in ``[-π, π)``.

The error is about ``2⁻³²·l`` turns (6e-6 rad at ``l = 4096``) instead of ``6e-8·|θ|``. Float64 inputs use the plain
product. The JVP is the exact derivative ``d(u·v·l) = (du·v + u·dv)·l`` (``custom_jvp``), so gradients are unchanged.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_INV2PI_HI = np.float32(1.0 / (2.0 * math.pi))
_INV2PI_LO = np.float32(1.0 / (2.0 * math.pi) - float(_INV2PI_HI))


def _split(a):
    c = a * np.float32(4097.0)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """``a·b = p + e`` exactly (float32, no FMA needed)."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _turns_u32(u, v):
    """Fractional part of ``u·v/(2π)`` as uint32 fixed point (units of 2⁻³² turn)."""
    x_hi, x_lo = _two_prod(u, v)
    p, e = _two_prod(x_hi, jnp.full_like(x_hi, _INV2PI_HI))
    e = e + (x_hi * _INV2PI_LO + x_lo * _INV2PI_HI)
    p = p - jnp.floor(p)  # exact; p in [0, 1)
    s = p * np.float32(65536.0)
    hi16 = jnp.floor(s)
    lo16 = jnp.round((s - hi16) * np.float32(65536.0))  # exact difference, then round to integer
    f = hi16.astype(jnp.uint32) * np.uint32(65536) + lo16.astype(jnp.uint32)
    corr = jnp.round(e * np.float32(2.0**32)).astype(jnp.int32)
    return f + lax.bitcast_convert_type(corr, jnp.uint32)


def _phase_f32(u, v, n: int, step: int):
    f = _turns_u32(u, v)[..., None]
    ell = jnp.arange(n, dtype=jnp.uint32) * np.uint32(step)
    wrapped = lax.bitcast_convert_type(f * ell, jnp.int32)
    return wrapped.astype(jnp.float32) * np.float32(2.0 * math.pi / 2.0**32)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def phase(u: jax.Array, v: jax.Array, n: int, step: int) -> jax.Array:
    """``θ[..., j] = u·v·(step·j)`` for ``j < n``, reduced to ``[-π, π)`` exactly-ish in float32.

    Args:
      u, v: real arrays of one dtype (float32 or float64), broadcastable to a common shape ``S``.
      n, step: static ints; ``n·step < 2³²``.

    Returns:
      ``(*S, n)`` phases; equal to ``u·v·l`` modulo 2π (float64: not reduced).

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> th = phase(jnp.float32(0.1), jnp.float32(97.4), 3, 4096)
      >>> th.shape
      (3,)
    """
    u, v = jnp.broadcast_arrays(u, v)
    if u.dtype == jnp.float64:
        ell = jnp.arange(n, dtype=jnp.float64) * float(step)
        return (u * v)[..., None] * ell
    return _phase_f32(u, v, n, step)


@phase.defjvp
def _phase_jvp(n, step, primals, tangents):
    u, v = primals
    du, dv = tangents
    out = phase(u, v, n, step)
    ell = jnp.arange(n, dtype=out.dtype) * float(step)
    dx = du * v + u * dv
    dx = jnp.broadcast_to(dx, out.shape[:-1])
    return out, dx[..., None] * ell
