"""Principal angles between subspaces (Björck & Golub 1973; Knyazev & Argentati 2002 for small angles)."""

from __future__ import annotations

import jax.numpy as jnp

from eigenkit._validate import _shape_str, check_array

__all__ = ["principal_angles"]


def principal_angles(a, b):
    """Principal angles ``0 <= θ_1 <= … <= θ_r <= π/2`` between ``span(a)`` and ``span(b)``, ``r = min(p, q)``.

    The one principal-angle function of eigenkit (``eigenkit.manifolds.principal_angles`` is this function):
    bases need **not** be orthonormal (any full-column-rank bases; spans are compared), and it is
    batch-polymorphic over leading axes. ``Q_a, Q_b`` = orthonormal bases (QR); ``cos θ`` = singular values of
    ``Q_aᵀ Q_b`` (Björck–Golub 1973) and ``sin θ`` = singular values of ``Q_b − Q_a Q_aᵀ Q_b`` (for the smaller
    subspace as ``b``); the sine formula is used for angles below π/4 and the cosine formula above (Knyazev &
    Argentati 2002, Alg. 3.1), so tiny angles are accurate (``arccos`` alone loses them below ``sqrt(eps)``). The
    gradient is undefined where two angles coincide or an angle is 0 (SVD of a degenerate matrix).

    Args:
      a: ``(..., n, p)`` basis (columns), real floating.
      b: ``(..., n, q)`` basis, same dtype and ``n``; leading axes broadcast.

    Returns:
      ``(..., min(p, q))`` angles in radians, ascending. Grassmann distance ``= ‖θ‖₂``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import principal_angles
      >>> e = jnp.eye(3)
      >>> [round(float(t), 4) for t in principal_angles(e[:, :2], e[:, 1:])]
      [0.0, 1.5708]
    """
    a = check_array(a, "a", min_ndim=2, kind="floating")
    b = check_array(b, "b", min_ndim=2, kind="floating")
    if b.shape[-2] != a.shape[-2]:
        raise ValueError(f"a and b must have the same number of rows n (ambient dimension), got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    for x, name in ((a, "a"), (b, "b")):
        if x.shape[-1] > x.shape[-2]:
            raise ValueError(f"{name} must have shape (..., n, p) with p <= n (a basis), got {_shape_str(x.shape)}")
    if a.shape[-1] < b.shape[-1]:
        a, b = b, a
    qa, _ = jnp.linalg.qr(a)
    qb, _ = jnp.linalg.qr(b)
    m = jnp.swapaxes(qa, -1, -2) @ qb
    cos = jnp.linalg.svd(m, compute_uv=False)  # descending -> ascending angles
    sin = jnp.flip(jnp.linalg.svd(qb - qa @ m, compute_uv=False), axis=-1)  # ascending -> ascending angles
    cos = jnp.clip(cos, 0, 1)
    sin = jnp.clip(sin, 0, 1)
    return jnp.where(cos**2 >= 0.5, jnp.arcsin(sin), jnp.arccos(cos))
