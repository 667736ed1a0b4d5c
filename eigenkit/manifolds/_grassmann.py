"""Grassmann (and Stiefel) geometry for orthonormal bases ``P`` of shape ``(..., D, k)``.

A point of the Grassmann manifold Gr(D, k) — a k-dimensional subspace of R^D — is represented by an orthonormal
basis ``P`` (``Pᵀ P = I_k``); the subspace is ``span(P)`` and ``P R`` (R ∈ O(k)) represents the same point.
Every function here is batch-polymorphic over leading axes (``(..., D, k)``, like ``jnp.linalg.eigh``), so a
stack of C class subspaces ``(C, D, k)`` is handled with one call; all are pure and jit/vmap/grad-compatible
(except :func:`check_orthonormal`, which is an eager validator).

Conventions (Edelman, Arias & Smith 1998, "The geometry of algorithms with orthogonality constraints",
SIAM J. Matrix Anal. Appl. 20(2), henceforth EAS):

* tangent vectors at ``P`` are ``G`` with ``Pᵀ G = 0`` (horizontal space, EAS §2.5);
* the canonical metric is ``<G1, G2> = tr(G1ᵀ G2)``;
* the geodesic from ``P`` in direction ``G = U Σ Vᵀ`` (thin SVD) is
  ``P(t) = P V cos(tΣ) Vᵀ + U sin(tΣ) Vᵀ`` (EAS Theorem 2.3); :func:`grassmann_exp` evaluates the same curve
  through the k×k Gram matrix ``Gᵀ G = V Σ² Vᵀ`` (see its docstring).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # jaxtyping is a test-time dependency; annotations are strings at run time
    from jaxtyping import Array, Float

from eigenkit._validate import check_array, check_rank_arg

__all__ = [
    "Retraction",
    "check_orthonormal",
    "grassmann_dist",
    "grassmann_exp",
    "grassmann_exp_svd",
    "grassmann_log",
    "grassmann_project",
    "grassmann_project_exp",
    "grassmann_random_point",
    "grassmann_retract",
    "grassmann_transport",
    "principal_angles",
    "qr_orthonormalize",
    "stiefel_project",
]


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _check_basis(p, name: str = "p"):
    p = check_array(p, name, min_ndim=2, kind="floating")
    d, k = p.shape[-2:]
    if k > d:
        raise ValueError(f"{name} must have shape (..., D, k) with k <= D (a basis of a subspace), got {p.shape}")
    return p


def _check_pair(p, g, pname="p", gname="g"):
    p = _check_basis(p, pname)
    g = check_array(g, gname, min_ndim=2, kind="floating")
    if g.shape[-2:] != p.shape[-2:]:
        raise ValueError(f"{gname} must have the same (D, k) = {p.shape[-2:]} as {pname}, got shape {g.shape}")
    if g.dtype != p.dtype:
        raise TypeError(f"{gname} must have the same dtype as {pname} ({p.dtype}), got {g.dtype}")
    return p, g


class Retraction(enum.Enum):
    """How a point ``P + G`` (or a drifted basis) is mapped back to an orthonormal basis.

    * ``QR``: plain Householder QR, ``Q`` as LAPACK returns it (column signs follow the pivots; this is what the
      official GCR code uses for its periodic re-orthonormalisation).
    * ``QR_SIGNFIXED``: QR with ``diag(R) >= 0`` ("unflip", as geoopt does), so a basis that is already
      orthonormal is returned unchanged and column signs never flip.
    * ``POLAR``: the closest orthonormal matrix ``X (XᵀX)^{-1/2}`` (computed from a k×k eigh).
    """

    QR = enum.auto()
    QR_SIGNFIXED = enum.auto()
    POLAR = enum.auto()


def grassmann_project(p: Float[Array, "... D k"], g: Float[Array, "... D k"]) -> Float[Array, "... D k"]:
    """Project a Euclidean gradient onto the tangent (horizontal) space of Gr(D, k) at ``P``.

    ``proj_P(G) = G − P (Pᵀ G) = (I − P Pᵀ) G`` (EAS eq. 2.70). Idempotent and an orthogonal projection
    (self-adjoint under ``tr(AᵀB)``) when ``Pᵀ P = I``. Cost O(D k²).

    Args:
      p: orthonormal basis, shape ``(..., D, k)``.
      g: Euclidean gradient / ambient vector, shape ``(..., D, k)``, same dtype.

    Returns:
      The tangent vector, shape ``(..., D, k)``; ``Pᵀ result = 0`` up to rounding.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = grassmann_random_point((5, 2), key=jax.random.key(0))
      >>> t = grassmann_project(p, jnp.ones((5, 2)))
      >>> bool(jnp.allclose(p.T @ t, 0.0, atol=1e-6))
      True
    """
    p, g = _check_pair(p, g)
    return g - p @ (_mT(p) @ g)


def stiefel_project(p: Float[Array, "... D k"], g: Float[Array, "... D k"]) -> Float[Array, "... D k"]:
    """Project onto the tangent space of the Stiefel manifold St(D, k) at ``P`` (embedded metric).

    ``proj_P(G) = G − P sym(Pᵀ G)``, ``sym(A) = (A + Aᵀ)/2`` (EAS eq. 2.4 with the Euclidean metric). For a loss
    that depends only on ``span(P)`` (e.g. GCR logits) ``Pᵀ ∇`` is symmetric, and this equals
    :func:`grassmann_project`.

    Args:
      p: orthonormal basis ``(..., D, k)``.
      g: ambient vector ``(..., D, k)``.

    Returns:
      Stiefel tangent vector ``(..., D, k)``.
    """
    p, g = _check_pair(p, g)
    a = _mT(p) @ g
    return g - p @ (0.5 * (a + _mT(a)))


def grassmann_transport(p_new: Float[Array, "... D k"], v: Float[Array, "... D k"]) -> Float[Array, "... D k"]:
    """Vector transport by projection: move tangent vector ``v`` (at some old point) to ``p_new``.

    ``T(v) = (I − P_new P_newᵀ) v``, the cheap first-order transport used by geoopt / pymanopt (Absil, Mahony &
    Sepulchre 2008, *Optimization Algorithms on Matrix Manifolds*, §8.1.3). Same formula as
    :func:`grassmann_project`; named separately so optimiser code says what it means.
    """
    return grassmann_project(p_new, v)


def grassmann_exp(
    p: Float[Array, "... D k"], g: Float[Array, "... D k"], t: float | Array = 1.0
) -> Float[Array, "... D k"]:
    """Exponential map (geodesic step) on Gr(D, k) in the k×k Gram–eigh form.

    With the thin SVD ``G = U Σ Vᵀ`` the geodesic is ``P(t) = P V cos(tΣ) Vᵀ + U sin(tΣ) Vᵀ`` (EAS Thm 2.3; the
    formula in GCR's ``rsgd.py``). Because ``U = G V Σ⁻¹`` this is

        ``GᵀG = V Σ² Vᵀ`` (k×k symmetric eigh),
        ``P(t) = P V cos(tΣ) Vᵀ + G V diag(t · sinc(tσ/π)) Vᵀ``  (``sin(tσ)/σ = t sinc(tσ/π)``),

    which needs only a k×k eigendecomposition plus two D×k·k×k products instead of a batched D×k SVD, and is finite
    at ``σ = 0``, so rank-deficient directions (including ``G = 0``) need no special casing. ``G`` must be tangent
    (``PᵀG = 0``); project first with :func:`grassmann_project`. The result stays orthonormal up to rounding
    (no re-orthonormalisation here; see :func:`qr_orthonormalize`).

    Gradients: differentiable in ``t`` and ``P``; differentiating through ``eigh`` with repeated ``σ`` is
    ill-defined, so do not backpropagate through the step direction (optimisers never do).

    Args:
      p: orthonormal basis ``(..., D, k)``.
      g: tangent vector at ``p``, ``(..., D, k)``, same dtype.
      t: step length (scalar or broadcastable to ``(...,)``); negative ``t`` walks along ``−G``.

    Returns:
      ``exp_P(t G)``, shape ``(..., D, k)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = grassmann_random_point((6, 2), key=jax.random.key(0))
      >>> g = grassmann_project(p, jax.random.normal(jax.random.key(1), (6, 2)))
      >>> q = grassmann_exp(p, g, 0.1)
      >>> bool(jnp.allclose(q.T @ q, jnp.eye(2), atol=1e-5))
      True
    """
    p, g = _check_pair(p, g)
    t = jnp.asarray(t, dtype=p.dtype)[..., None]  # broadcast over the k eigenvalues
    w, v = jnp.linalg.eigh(_mT(g) @ g)
    sigma = jnp.sqrt(jnp.maximum(w, 0.0))
    ts = t * sigma
    cos = jnp.cos(ts)
    sinc = t * jnp.sinc(ts / np.pi)  # = sin(tσ)/σ, equal to t at σ = 0
    vt = _mT(v)
    # form the two k×k matrices first: one pass over P and G each
    return p @ (v @ (cos[..., :, None] * vt)) + g @ (v @ (sinc[..., :, None] * vt))


def grassmann_project_exp(
    p: Float[Array, "... D k"], d: Float[Array, "... D k"], t: float | Array = 1.0
) -> Float[Array, "... D k"]:
    """Fused ``grassmann_exp(p, grassmann_project(p, d), t)``: project an ambient vector and take the geodesic step.

    Same result in exact arithmetic, but only k×k matrices are formed between two streaming passes over ``P`` and
    ``d`` (the memory-bound part at GCR sizes): with ``A = Pᵀd``, ``G = d − P A`` has Gram matrix
    ``GᵀG = dᵀd − 2 AᵀA + Aᵀ(PᵀP)A`` (exact even when ``P`` has drifted slightly from orthonormality), and with
    ``GᵀG = V Σ² Vᵀ``, ``S = V diag(t sinc(tσ/π)) Vᵀ``, ``Cs = V cos(tΣ) Vᵀ``:
    ``P(t) = P (Cs − A S) + d S``. Used by :func:`~eigenkit.manifolds.riemannian_sgd`.

    Args:
      p: orthonormal basis ``(..., D, k)``.
      d: ambient (e.g. Euclidean gradient / momentum) ``(..., D, k)``, same dtype.
      t: step length.

    Returns:
      ``exp_P(t (I − PPᵀ) d)``, shape ``(..., D, k)``.
    """
    p, d = _check_pair(p, d, "p", "d")
    t = jnp.asarray(t, dtype=p.dtype)[..., None]
    a = _mT(p) @ d
    ptp = _mT(p) @ p
    ata = _mT(a) @ a
    gram = _mT(d) @ d - 2.0 * ata + _mT(a) @ (ptp @ a)
    gram = 0.5 * (gram + _mT(gram))
    w, v = jnp.linalg.eigh(gram)
    sigma = jnp.sqrt(jnp.maximum(w, 0.0))
    ts = t * sigma
    vt = _mT(v)
    cs = v @ (jnp.cos(ts)[..., :, None] * vt)
    sm = v @ ((t * jnp.sinc(ts / np.pi))[..., :, None] * vt)
    return p @ (cs - a @ sm) + d @ sm


def grassmann_exp_svd(
    p: Float[Array, "... D k"], g: Float[Array, "... D k"], t: float | Array = 1.0
) -> Float[Array, "... D k"]:
    """Exponential map via a batched thin SVD of ``G`` (EAS Thm 2.3; the reference form used by GCR's ``rsgd.py``).

    ``G = U Σ Vᵀ``, ``P(t) = (P V cos(tΣ) + U sin(tΣ)) Vᵀ``. Same curve as :func:`grassmann_exp`, kept as the
    reference and as the benchmark baseline (it is several times slower at ``D ≫ k``).
    """
    p, g = _check_pair(p, g)
    t = jnp.asarray(t, dtype=p.dtype)[..., None]
    u, s, vt = jnp.linalg.svd(g, full_matrices=False)
    ts = t * s
    return ((p @ _mT(vt)) * jnp.cos(ts)[..., None, :] + u * jnp.sin(ts)[..., None, :]) @ vt


def grassmann_log(p: Float[Array, "... D k"], q: Float[Array, "... D k"]) -> Float[Array, "... D k"]:
    """Logarithm map: the tangent ``G`` at ``P`` with ``exp_P(G)`` spanning ``span(Q)`` (EAS §2.5.5).

    ``(I − PPᵀ) Q (PᵀQ)⁻¹ = U Σ Vᵀ`` (thin SVD), ``G = U arctan(Σ) Vᵀ``. Requires ``PᵀQ`` invertible (no principal
    angle equal to π/2). Result is basis-invariant in ``Q`` (``Q → Q R`` leaves it unchanged).
    """
    p, q = _check_pair(p, q, "p", "q")
    ptq = _mT(p) @ q
    m = _mT(jnp.linalg.solve(_mT(ptq), _mT(q - p @ ptq)))
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    return (u * jnp.arctan(s)[..., None, :]) @ vt


def principal_angles(p: Float[Array, "... D k"], q: Float[Array, "... D l"]) -> Float[Array, "... m"]:
    """Principal angles between ``span(P)`` and ``span(Q)``, ascending, ``m = min(k, l)``.

    Björck & Golub (1973): ``cos θ`` are the singular values of ``PᵀQ``; for accuracy at small angles the sines
    are taken from the singular values of ``(I − PPᵀ) Q`` and ``θ = arctan2(sin θ, cos θ)`` (pairing the ascending
    sines with the descending cosines). Both bases must be orthonormal. Accurate to ~eps for all angles.

    Args:
      p: orthonormal ``(..., D, k)``.
      q: orthonormal ``(..., D, l)``.

    Returns:
      angles in ``[0, π/2]``, shape ``(..., min(k, l))``, ascending.
    """
    p = _check_basis(p, "p")
    q = _check_basis(q, "q")
    if p.shape[-2] != q.shape[-2] or p.dtype != q.dtype:
        raise ValueError(f"p and q must share D and dtype, got {p.shape} {p.dtype} and {q.shape} {q.dtype}")
    if p.shape[-1] < q.shape[-1]:
        p, q = q, p  # make q the smaller one: m = l
    cos = jnp.linalg.svd(_mT(p) @ q, compute_uv=False)  # descending, length l
    sin = jnp.linalg.svd(q - p @ (_mT(p) @ q), compute_uv=False)  # descending, length l
    return jnp.arctan2(jnp.flip(sin, axis=-1), jnp.clip(cos, 0.0, None))


def grassmann_dist(p: Float[Array, "... D k"], q: Float[Array, "... D k"]) -> Float[Array, "..."]:
    """Geodesic (arc-length) distance on Gr(D, k): ``‖θ‖₂`` over the principal angles (EAS §4.3)."""
    th = principal_angles(p, q)
    return jnp.sqrt(jnp.sum(th * th, axis=-1))


def qr_orthonormalize(
    x: Float[Array, "... D k"], retraction: Retraction = Retraction.QR_SIGNFIXED
) -> Float[Array, "... D k"]:
    """Map a full-column-rank ``X`` to an orthonormal basis of (nearly) its span.

    ``Retraction.QR``: LAPACK's Q (signs as returned); ``QR_SIGNFIXED``: ``Q diag(sign⁺ diag R)`` so that an
    orthonormal input comes back unchanged; ``POLAR``: ``X (XᵀX)^{-1/2}`` via a k×k eigh (closest orthonormal matrix).
    """
    x = _check_basis(x, "x")
    if retraction is Retraction.POLAR:
        w, v = jnp.linalg.eigh(_mT(x) @ x)
        inv_sqrt = v @ (jax.lax.rsqrt(jnp.maximum(w, jnp.finfo(x.dtype).tiny))[..., :, None] * _mT(v))  # k×k
        return x @ inv_sqrt
    q, r = jnp.linalg.qr(x)
    if retraction is Retraction.QR:
        return q
    if retraction is Retraction.QR_SIGNFIXED:
        d = jnp.diagonal(r, axis1=-2, axis2=-1)
        return q * jnp.where(d < 0, -1.0, 1.0).astype(x.dtype)[..., None, :]
    raise TypeError(f"retraction must be a Retraction enum member, got {retraction!r}")


def grassmann_retract(
    p: Float[Array, "... D k"],
    g: Float[Array, "... D k"],
    t: float | Array = 1.0,
    retraction: Retraction = Retraction.QR_SIGNFIXED,
) -> Float[Array, "... D k"]:
    """First-order retraction ``R_P(tG) = orthonormalize(P + tG)`` (Absil et al. 2008, Ex. 4.1.3 / §4.8).

    Agrees with :func:`grassmann_exp` to second order in ``t``; cheaper when k is tiny. ``POLAR`` with tangent
    ``G`` is ``(P + tG)(I + t²GᵀG)^{-1/2}``.
    """
    p, g = _check_pair(p, g)
    t = jnp.asarray(t, dtype=p.dtype)[..., None, None]
    return qr_orthonormalize(p + t * g, retraction)


def grassmann_random_point(
    shape: tuple[int, ...], *, key: jax.Array, dtype=jnp.float32
) -> Float[Array, "... D k"]:
    """Uniformly random orthonormal basis(es) of shape ``(..., D, k)`` (Haar: sign-fixed QR of a Gaussian).

    Args:
      shape: ``(..., D, k)`` with ``k <= D``.
      key: a ``jax.random.key``.
      dtype: floating dtype.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must be (..., D, k), got {shape}")
    check_rank_arg(shape[-1], "k", upper=shape[-2], upper_name="D")
    x = jax.random.normal(key, shape, dtype=dtype)
    return qr_orthonormalize(x, Retraction.QR_SIGNFIXED)


def check_orthonormal(p, name: str = "p", *, atol: float | None = None) -> jax.Array:
    """Eager validation that ``p`` is a float array ``(..., D, k)``, ``k <= D``, with ``PᵀP = I_k`` to ``atol``.

    Shapes/dtypes are checked always; the value check is skipped on tracers (inside ``jit``). Default ``atol``:
    ``1e-4`` for float32/bfloat16-like precisions ≥ 1e-7 machine epsilon, ``1e-8`` for float64.

    Raises:
      ValueError: wrong rank, ``k > D``, or not orthonormal (message gives the max deviation).
      TypeError: non-floating dtype.
    """
    p = _check_basis(p, name)
    if isinstance(p, jax.core.Tracer):
        return p
    if atol is None:
        atol = 1e-8 if jnp.finfo(p.dtype).eps < 1e-10 else 1e-4
    a = np.asarray(p, dtype=np.float64)
    k = a.shape[-1]
    err = float(np.max(np.abs(np.swapaxes(a, -1, -2) @ a - np.eye(k)), initial=0.0))
    if not np.isfinite(err) or err > atol:
        raise ValueError(
            f"{name} must have orthonormal columns (PᵀP = I_{k}); max |PᵀP − I| = {err:.3g} > atol = {atol:g}. "
            "Orthonormalise it first (e.g. eigenkit.manifolds.qr_orthonormalize)."
        )
    return p
