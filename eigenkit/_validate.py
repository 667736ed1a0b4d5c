"""Input checks shared by all floors: clear errors that name the argument and the expected shape/dtype.

Shapes and dtypes are static under ``jit``, so these checks run at trace time and cost nothing at run time.
Values (NaN/Inf) are *not* static; functions that cannot check them document how NaN propagates, and
``check_finite`` is offered for eager (non-traced) call sites such as data loaders and optimiser inits.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _shape_str(shape) -> str:
    """``(6,)``, ``(10, *)``, ``(n, n)``: Python tuple style, ``*`` for an unconstrained size."""
    parts = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def check_array(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    shape: Sequence[int | str | None] | None = None,
    kind: str | None = None,
) -> jax.Array:
    """Validate ``x`` and return it as a ``jax.Array``.

    Args:
      x: the array-like to check.
      name: the argument name used in the error message.
      ndim: required rank (or tuple of allowed ranks).
      min_ndim: minimum rank (for batch-polymorphic ``(..., n, n)`` arguments).
      shape: expected trailing shape; ``None`` or a string (a symbolic name such as ``"n"``) matches any size.
        Equal symbolic names must have equal sizes.
      kind: ``"floating"``, ``"complex"``, ``"inexact"`` (float or complex), ``"integer"`` or ``"bool"``.

    Raises:
      TypeError: wrong dtype kind.
      ValueError: wrong rank or shape.
    """
    if not isinstance(x, jax.Array | np.ndarray | jax.core.Tracer):
        x = jnp.asarray(x)
    shp = tuple(x.shape)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shp) not in allowed:
            raise ValueError(
                f"{name} must have rank {' or '.join(map(str, allowed))}, got shape {_shape_str(shp)}"
            )
    if min_ndim is not None and len(shp) < min_ndim:
        raise ValueError(f"{name} must have rank >= {min_ndim}, got shape {_shape_str(shp)}")
    if shape is not None:
        want = tuple(shape)
        if len(shp) < len(want):
            raise ValueError(f"{name} must have shape (..., {_shape_str(want)[1:]}, got {_shape_str(shp)}")
        tail = shp[len(shp) - len(want):]
        named: dict[str, int] = {}
        for got, exp in zip(tail, want):
            if exp is None:
                continue
            if isinstance(exp, str):
                if named.setdefault(exp, got) != got:
                    raise ValueError(
                        f"{name} must have shape {_shape_str(want)} with equal sizes for '{exp}', "
                        f"got {_shape_str(shp)}"
                    )
            elif got != exp:
                raise ValueError(f"{name} must have shape {_shape_str(want)}, got {_shape_str(shp)}")
    if kind is not None:
        dt = jnp.dtype(x.dtype)
        ok = {
            "floating": jnp.issubdtype(dt, jnp.floating),
            "complex": jnp.issubdtype(dt, jnp.complexfloating),
            "inexact": jnp.issubdtype(dt, jnp.inexact),
            "integer": jnp.issubdtype(dt, jnp.integer),
            "bool": dt == jnp.bool_,
        }[kind]
        if not ok:
            raise TypeError(f"{name} must have {_article(kind)} {kind} dtype, got {dt}")
    return jnp.asarray(x)


HALF_DTYPES = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def at_least_float32(x: jax.Array) -> jax.Array:
    """``x`` in float32 if it is bfloat16 / float16, else unchanged: decompositions (eigh, Cholesky, logdet) run in
    float32 inside half-precision models (a mixed-precision policy never reaches them in bfloat16)."""
    return x.astype(jnp.float32) if jnp.dtype(x.dtype) in HALF_DTYPES else x


def check_square(x, name: str, *, kind: str = "inexact") -> jax.Array:
    """``x`` of shape ``(..., n, n)`` with an inexact dtype; bfloat16 / float16 come back as float32
    (:func:`at_least_float32`), so every square-matrix primitive computes and returns float32 for them."""
    x = check_array(x, name, min_ndim=2, kind=kind)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square with shape (..., n, n), got {_shape_str(x.shape)}")
    return at_least_float32(x)


def check_rank_arg(k: int, name: str, *, upper: int, upper_name: str, lower: int = 1) -> int:
    """A static integer hyperparameter ``lower <= k <= upper`` (e.g. a rank k <= n)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{name} must be a Python int (it sets a shape, so it is static), got {type(k).__name__}")
    k = int(k)
    if not lower <= k <= upper:
        raise ValueError(f"{name} must satisfy {lower} <= {name} <= {upper_name} = {upper}, got {name} = {k}")
    return k


def check_finite(x, name: str) -> None:
    """Eager check that ``x`` holds no NaN/Inf. A no-op on tracers (documented NaN propagation applies there)."""
    if isinstance(x, jax.core.Tracer):
        return
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s)")


def _concrete_value(x):
    """``np.ndarray`` of a concrete (non-traced) value, or None under ``jit``/``grad`` tracing."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except Exception:  # noqa: BLE001 - e.g. abstract values
        return None


def check_positive(x, name: str, *, allow_zero: bool = False) -> None:
    """Eager check that a concrete scalar/array ``x`` is ``> 0`` (``>= 0`` with ``allow_zero``); no-op on tracers."""
    v = _concrete_value(x)
    if v is None or v.size == 0 or not np.issubdtype(v.dtype, np.number):
        return
    bad = np.any(v < 0) if allow_zero else np.any(v <= 0)
    if bad or np.any(np.isnan(v)):
        shown = v.item() if v.size == 1 else f"min {np.nanmin(v):g}"
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {shown}")


def check_nonempty(x, name: str) -> None:
    """``x`` (an array) has no zero-length axis (shapes are static, so this also works under ``jit``)."""
    if 0 in tuple(x.shape):
        raise ValueError(f"{name} must be non-empty, got shape {_shape_str(x.shape)}")


def check_key(key, name: str = "key") -> jax.Array:
    """A PRNG key made by ``jax.random.key`` (typed) or the legacy ``jax.random.PRNGKey`` (``uint32[2]``)."""
    if isinstance(key, jax.Array | jax.core.Tracer):
        dt = key.dtype
        if jnp.issubdtype(dt, jax.dtypes.prng_key):
            return key
        if dt == jnp.uint32 and tuple(key.shape)[-1:] == (2,):
            return key
    raise TypeError(f"{name} must be a PRNG key made by jax.random.key(seed), got {type(key).__name__}"
                    + (f" of dtype {key.dtype}" if hasattr(key, "dtype") else f" {key!r}"))
