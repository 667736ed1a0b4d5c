"""Grassmann (and Stiefel) geometry for orthonormal bases ``P`` of shape ``(..., D, k)``.

A point of the Grassmann manifold Gr(D, k) — a k-dimensional subspace of R^D — is represented by an orthonormal
basis ``P`` (``Pᵀ P = I_k``); the subspace is ``span(P)`` and ``P R`` (R ∈ O(k)) represents the same point.
Every function here is batch-polymorphic over leading axes (``(..., D, k)``, like ``jnp.linalg.eigh``), so a
stack of C class subspaces ``(C, D, k)`` is handled with one call; all are pure and jit/vmap/grad-compatible
(except :func:`check_orthonormal`, which is an eager validator). Functions that assume ``PᵀP = I`` check it eagerly
in JAX's debug mode (``jax.config.update("jax_enable_checks", True)``; tolerance 1e-3 in float32, 1e-6 in
float64); otherwise the caller is trusted (an optimiser re-orthonormalises periodically).

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
from eigenkit.linalg._angles import principal_angles  # one contract: any full-rank bases, batched

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


_UNROLL_MAX_K = 16  # tall-times-small products up to this k are unrolled (see _tall_small)


def _tall_small(x, m, y=None, n=None):
    """``x @ m`` (+ ``y @ n``) for tall ``(..., D, k)`` times small ``(..., k, j)``, as one fused elementwise pass.

    XLA:CPU runs a batch of ``(D × k)·(k × j)`` products with k ≤ 16 at a fraction of memory bandwidth (C = 1000,
    D = 2048, k = 8 float32: 32 ms for ``P @ M``, 66 ms for ``P @ M + G @ N``), while the same sum written as k
    broadcast multiply-adds is a single loop fusion that reads ``x`` (and ``y``) once and writes the result once
    (18 ms for either; ``experiments/benchmarks/grassmann.py``). The summation order over k is the same as a dot's,
    so the result agrees to rounding. Larger k falls back to ``matmul``.
    """
    k = x.shape[-1]
    if k > _UNROLL_MAX_K or (y is not None and y.shape[-1] > _UNROLL_MAX_K):
        out = x @ m
        return out if y is None else out + y @ n
    out = x[..., :, 0:1] * m[..., None, 0, :]
    for i in range(1, k):
        out = out + x[..., :, i:i + 1] * m[..., None, i, :]
    if y is not None:
        for i in range(y.shape[-1]):
            out = out + y[..., :, i:i + 1] * n[..., None, i, :]
    return out


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _check_basis(p, name: str = "p"):
    p = check_array(p, name, min_ndim=2, kind="floating")
    d, k = p.shape[-2:]
    if k > d:
        raise ValueError(f"{name} must have shape (..., D, k) with k <= D (a basis of a subspace), got {p.shape}")
    return p


def _debug_orthonormal(p, name):
    """Debug mode (``jax.config.update("jax_enable_checks", True)``): eager ``PᵀP = I`` check of a concrete ``p``.

    Functions that *assume* an orthonormal basis (projection, exp/log, transport) call this; it costs nothing
    otherwise and is skipped under ``jit`` (tracers).
    """
    if jax.config.jax_enable_checks and not isinstance(p, jax.core.Tracer):
        check_orthonormal(p, name, atol=1e-3 if jnp.finfo(p.dtype).eps > 1e-10 else 1e-6)


def _check_pair(p, g, pname="p", gname="g"):
    p = _check_basis(p, pname)
    _debug_orthonormal(p, pname)
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
      >>> from eigenkit.manifolds import grassmann_project, grassmann_random_point
      >>> p = grassmann_random_point((5, 2), key=jax.random.key(0))
      >>> t = grassmann_project(p, jnp.ones((5, 2)))
      >>> bool(jnp.allclose(p.T @ t, 0.0, atol=1e-6))
      True
    """
    p, g = _check_pair(p, g)
    return g - _tall_small(p, _mT(p) @ g)


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

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_random_point, stiefel_project
      >>> p = grassmann_random_point((5, 2), key=jax.random.key(0))
      >>> t = stiefel_project(p, jnp.ones((5, 2)))
      >>> a = p.T @ t  # skew-symmetric: PᵀT + TᵀP = 0
      >>> bool(jnp.allclose(a + a.T, 0.0, atol=1e-5))
      True
    """
    p, g = _check_pair(p, g)
    a = _mT(p) @ g
    return g - p @ (0.5 * (a + _mT(a)))


def grassmann_transport(p_new: Float[Array, "... D k"], v: Float[Array, "... D k"]) -> Float[Array, "... D k"]:
    """Vector transport by projection: move tangent vector ``v`` (at some old point) to ``p_new``.

    ``T(v) = (I − P_new P_newᵀ) v``, the cheap first-order transport used by geoopt / pymanopt (Absil, Mahony &
    Sepulchre 2008, *Optimization Algorithms on Matrix Manifolds*, §8.1.3). Same formula as
    :func:`grassmann_project`; named separately so optimiser code says what it means.

    Args:
      p_new: orthonormal basis ``(..., D, k)`` (the new point).
      v: tangent vector at the old point, same shape and dtype.

    Returns:
      tangent vector at ``p_new``, ``(..., D, k)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_random_point, grassmann_transport
      >>> q = grassmann_random_point((5, 2), key=jax.random.key(0))
      >>> t = grassmann_transport(q, jnp.ones((5, 2)))
      >>> bool(jnp.allclose(q.T @ t, 0.0, atol=1e-5))
      True
    """
    return grassmann_project(p_new, v)


def _exp_factors(v, ts, t):
    """``Cs = V cos(tΣ) Vᵀ`` and ``S = V diag(sin(tσ)/σ) Vᵀ`` as ``I + V (·) Vᵀ`` corrections.

    Writing ``Cs = I + V (cos(tΣ) − I) Vᵀ`` and ``S = t I + V (sin(tσ)/σ − t) Vᵀ`` multiplies the rounding error of
    the float32 k×k eigenvectors ``V`` (their ``VᵀV − I``) by the small ``cos − 1 = −2 sin²(tσ/2)`` and
    ``sinc − t`` instead of by 1: the plain ``V cos Vᵀ`` form adds ~1e-6 to ``‖PᵀP − I‖`` per float32 step, this one
    ~1e-7. ``t`` has shape ``(..., 1)``; ``ts = t σ`` has shape ``(..., k)``.
    """
    k = v.shape[-1]
    eye = jnp.eye(k, dtype=v.dtype)
    vt = _mT(v)
    cos_m1 = -2.0 * jnp.sin(ts / 2) ** 2
    sinc = t * jnp.sinc(ts / np.pi)  # = sin(tσ)/σ, equal to t at σ = 0
    cs = eye + v @ (cos_m1[..., :, None] * vt)
    sm = t[..., None] * eye + v @ ((sinc - t)[..., :, None] * vt)
    return cs, sm


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
      >>> from eigenkit.manifolds import grassmann_exp, grassmann_project, grassmann_random_point
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
    cs, sm = _exp_factors(v, ts, t)
    # form the two k×k matrices first, then one fused pass over P and G
    return _tall_small(p, cs, g, sm)


def grassmann_project_exp(
    p: Float[Array, "... D k"], d: Float[Array, "... D k"], t: float | Array = 1.0
) -> Float[Array, "... D k"]:
    """Fused ``grassmann_exp(p, grassmann_project(p, d), t)``: project an ambient vector and take the geodesic step.

    Same curve as the unfused pair, with only k×k matrices formed between streaming passes over ``P``, ``d`` and
    one D×k intermediate (the memory-bound part at GCR sizes). It is written to keep ``P(t)`` orthonormal to float
    rounding even when ``d`` is dominated by its normal part ``P Pᵀd`` (the Euclidean momentum buffer of
    :func:`~eigenkit.manifolds.riemannian_sgd` accumulates the normal parts of all past gradients, often 10–50×
    the tangent part):

    1. ``H = PᵀP``, ``A = H⁻¹ Pᵀd`` — the exact orthogonal projection onto ``span(P)⊥`` even when ``P`` has
       drifted from orthonormality (``Pᵀ(d − PA) = 0``). With ``A = Pᵀd`` the step multiplies the drift
       ``E = PᵀP − I`` by about ``1 + 2|t|‖A‖`` — geometric growth between re-orthonormalisations.
    2. ``G₁ = d − P A`` explicitly, then a second projection ``c = H⁻¹ PᵀG₁`` ("twice is enough", as in
       Gram–Schmidt): the cancellation in ``d − PA`` leaves an ``O(eps‖d‖)`` component along ``P`` that would
       otherwise enter ``P(t)``'s orthonormality multiplied by ``|t|``.
    3. ``GᵀG = G₁ᵀG₁ − (PᵀG₁)ᵀ c = V Σ² Vᵀ``, ``S = V diag(t sinc(tσ/π)) Vᵀ``, ``Cs = V cos(tΣ) Vᵀ``
       (in the rounding-robust ``I + V(·)Vᵀ`` form), ``P(t) = P (Cs − c S) + G₁ S``.

    Used by :func:`~eigenkit.manifolds.riemannian_sgd` (``MomentumRule.EUCLIDEAN_BUFFER``).

    Args:
      p: orthonormal basis ``(..., D, k)``.
      d: ambient (e.g. Euclidean gradient / momentum) ``(..., D, k)``, same dtype.
      t: step length (scalar or broadcastable to ``(...,)``).

    Returns:
      ``exp_P(t (I − PPᵀ) d)``, shape ``(..., D, k)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_exp, grassmann_project, grassmann_project_exp
      >>> from eigenkit.manifolds import grassmann_random_point
      >>> p = grassmann_random_point((6, 2), key=jax.random.key(0))
      >>> d = jax.random.normal(jax.random.key(1), (6, 2))
      >>> q = grassmann_project_exp(p, d, 0.1)
      >>> bool(jnp.allclose(q, grassmann_exp(p, grassmann_project(p, d), 0.1), atol=1e-5))
      True
    """
    p, d = _check_pair(p, d, "p", "d")
    t = jnp.asarray(t, dtype=p.dtype)[..., None]
    pt = _mT(p)
    ptp = pt @ p
    a = jnp.linalg.solve(ptp, pt @ d)
    g1 = d - _tall_small(p, a)
    b = pt @ g1
    c = jnp.linalg.solve(ptp, b)
    g1tg1 = _mT(g1) @ g1
    gram = g1tg1 - _mT(b) @ c
    gram = 0.5 * (gram + _mT(gram))
    w, v = jnp.linalg.eigh(gram)
    sigma = jnp.sqrt(jnp.maximum(w, 0.0))
    cs, sm = _exp_factors(v, t * sigma, t)
    m = cs - c @ sm
    g1s = _tall_small(g1, sm)  # G₁S, for its Gram (reusing it for the output below is slower: XLA re-fuses it)
    # YᵀY of Y = P M + G₁S (no cancellation: b = PᵀG₁ is O(eps)), then one Newton–Schulz step Y ← Y (3I − YᵀY)/2
    # folded into M and S: same subspace, drift of P removed to second order. (G₁S)ᵀ(G₁S) must come from G₁S itself:
    # S (G₁ᵀG₁) S from k×k factors doubles the float32 drift of the 1000-step regression test.
    yty = _mT(m) @ ptp @ m + _mT(m) @ b @ sm + sm @ _mT(b) @ m + _mT(g1s) @ g1s
    n = 1.5 * jnp.eye(yty.shape[-1], dtype=yty.dtype) - 0.5 * (0.5 * (yty + _mT(yty)))
    return _tall_small(p, m @ n, g1, sm @ n)


def grassmann_exp_svd(
    p: Float[Array, "... D k"], g: Float[Array, "... D k"], t: float | Array = 1.0
) -> Float[Array, "... D k"]:
    """Exponential map via a batched thin SVD of ``G`` (EAS Thm 2.3; the reference form used by GCR's ``rsgd.py``).

    ``G = U Σ Vᵀ``, ``P(t) = (P V cos(tΣ) + U sin(tΣ)) Vᵀ``. Same curve as :func:`grassmann_exp`, kept as the
    reference and as the benchmark baseline (it is several times slower at ``D ≫ k``).

    Args:
      p: orthonormal basis ``(..., D, k)``.
      g: tangent vector at ``p``, ``(..., D, k)``, same dtype.
      t: step length.

    Returns:
      ``exp_P(t G)``, ``(..., D, k)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_exp, grassmann_exp_svd, grassmann_project, grassmann_random_point
      >>> p = grassmann_random_point((6, 2), key=jax.random.key(0))
      >>> g = grassmann_project(p, jax.random.normal(jax.random.key(1), (6, 2)))
      >>> bool(jnp.allclose(grassmann_exp_svd(p, g, 0.3), grassmann_exp(p, g, 0.3), atol=1e-5))
      True
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

    Args:
      p: orthonormal basis ``(..., D, k)``.
      q: basis ``(..., D, k)`` of the target subspace (need not be orthonormal), same dtype.

    Returns:
      tangent vector ``G`` at ``p``, ``(..., D, k)``, with ``exp_P(G)`` spanning ``span(Q)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_dist, grassmann_exp, grassmann_log, grassmann_random_point
      >>> p = grassmann_random_point((6, 2), key=jax.random.key(0))
      >>> q = grassmann_random_point((6, 2), key=jax.random.key(1))
      >>> g = grassmann_log(p, q)
      >>> round(float(grassmann_dist(grassmann_exp(p, g), q)), 4)
      0.0
    """
    p, q = _check_pair(p, q, "p", "q")
    ptq = _mT(p) @ q
    m = _mT(jnp.linalg.solve(_mT(ptq), _mT(q - p @ ptq)))
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    return (u * jnp.arctan(s)[..., None, :]) @ vt


def grassmann_dist(p: Float[Array, "... D k"], q: Float[Array, "... D k"]) -> Float[Array, ...]:
    """Geodesic (arc-length) distance on Gr(D, k): ``‖θ‖₂`` over the principal angles (EAS §4.3).

    Args:
      p: ``(..., D, k)`` basis (orthonormal or not: spans are compared).
      q: ``(..., D, k)`` basis, same dtype.

    Returns:
      ``(...)`` distances in ``[0, √k · π/2]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_dist
      >>> e = jnp.eye(3)
      >>> round(float(grassmann_dist(e[:, :1], e[:, 1:2])), 4)
      1.5708
    """
    th = principal_angles(p, q)
    return jnp.sqrt(jnp.sum(th * th, axis=-1))


def qr_orthonormalize(
    x: Float[Array, "... D k"], retraction: Retraction = Retraction.QR_SIGNFIXED
) -> Float[Array, "... D k"]:
    """Map a full-column-rank ``X`` to an orthonormal basis of (nearly) its span.

    ``Retraction.QR``: LAPACK's Q (signs as returned); ``QR_SIGNFIXED``: ``Q diag(sign⁺ diag R)`` so that an
    orthonormal input comes back unchanged; ``POLAR``: ``X (XᵀX)^{-1/2}`` via a k×k eigh plus one k×k Newton–Schulz
    refinement (closest orthonormal matrix; float32 ``max|QᵀQ − I|`` ≈ 3e-7, as QR).

    Args:
      x: ``(..., D, k)`` floating, full column rank, ``k <= D``.
      retraction: a :class:`Retraction` member.

    Returns:
      ``(..., D, k)`` orthonormal basis, dtype of ``x``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import Retraction, qr_orthonormalize
      >>> q = qr_orthonormalize(jax.random.normal(jax.random.key(0), (5, 2)), Retraction.POLAR)
      >>> bool(jnp.allclose(q.T @ q, jnp.eye(2), atol=1e-5))
      True
    """
    x = _check_basis(x, "x")
    if retraction is Retraction.POLAR:
        h = _mT(x) @ x
        w, v = jnp.linalg.eigh(h)
        inv_sqrt = v @ (jax.lax.rsqrt(jnp.maximum(w, jnp.finfo(x.dtype).tiny))[..., :, None] * _mT(v))  # k×k
        # one Newton–Schulz refinement on the k×k factor, Z ← Z (3I − Zᵀ H Z)/2: the eigh-based Z alone leaves
        # ~1e-6 orthonormality error in float32 (k×k work only; the result is the same polar factor).
        e = _mT(inv_sqrt) @ h @ inv_sqrt - jnp.eye(h.shape[-1], dtype=h.dtype)
        inv_sqrt = inv_sqrt - 0.5 * (inv_sqrt @ e)
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

    Args:
      p: orthonormal basis ``(..., D, k)``.
      g: tangent vector at ``p``, same shape and dtype.
      t: step length.
      retraction: a :class:`Retraction` member.

    Returns:
      ``(..., D, k)`` orthonormal basis.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_dist, grassmann_exp, grassmann_project, grassmann_random_point
      >>> from eigenkit.manifolds import grassmann_retract
      >>> p = grassmann_random_point((6, 2), key=jax.random.key(0))
      >>> g = grassmann_project(p, jax.random.normal(jax.random.key(1), (6, 2)))
      >>> bool(grassmann_dist(grassmann_retract(p, g, 0.01), grassmann_exp(p, g, 0.01)) < 1e-3)
      True
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

    Returns:
      ``(..., D, k)`` orthonormal bases.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_random_point
      >>> p = grassmann_random_point((4, 6, 2), key=jax.random.key(0))
      >>> p.shape, bool(jnp.allclose(jnp.swapaxes(p, -1, -2) @ p, jnp.eye(2), atol=1e-5))
      ((4, 6, 2), True)
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

    Args:
      p: ``(..., D, k)`` floating array.
      name: argument name used in the error message.
      atol: tolerance on ``max|PᵀP − I|``.

    Returns:
      ``p`` as a ``jax.Array`` (unchanged).

    Raises:
      ValueError: wrong rank, ``k > D``, or not orthonormal (message gives the max deviation).
      TypeError: non-floating dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.manifolds import check_orthonormal
      >>> check_orthonormal(jnp.eye(3)[:, :2]).shape
      (3, 2)
      >>> try:
      ...     check_orthonormal(2.0 * jnp.eye(3)[:, :2])
      ... except ValueError as e:
      ...     print("ValueError")
      ValueError
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
