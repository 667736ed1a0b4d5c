"""Symmetric eigendecomposition with gradients that stay finite under (near-)degenerate spectra.

Background: JAX's ``eigh`` JVP is

    dλ_i = v_iᵀ dA v_i,        dV = V (F ∘ (Vᵀ dA V)),        F_ij = 1 / (λ_j − λ_i)  (i ≠ j),

which is infinite when two eigenvalues coincide, even when the downstream loss does not depend on the
arbitrary basis inside the degenerate eigenspace (jax#669, #4646, #10877). This module offers

* :func:`eigh` — ``jnp.linalg.eigh`` with a selectable rule for ``F`` (:class:`EighGrad`);
* :func:`eigh_projector` — the top-/bottom-``d`` spectral projector ``P = V_d V_dᵀ``, whose derivative only
  involves *cross-block* gaps, so it is exact however degenerate the spectrum is inside each block;
* :func:`spectral_function` — ``V f(Λ) Vᵀ`` with the Daleckii–Krein derivative (divided differences, with the
  ``f'(λ)`` limit on (near-)equal eigenvalues), exact under any degeneracy;
* :func:`spectral_tensor` — ``V diag(φ(λ)) Vᵀ`` for a learned, multi-channel or coupled φ (SPE's tensor), exact
  gradients w.r.t. the matrix and φ's parameters under any degeneracy;
* :func:`topk_eigh` — ``eigh`` + slice for small ``n``.

Input conventions shared by all functions here: ``a`` has shape ``(..., n, n)`` (batch-polymorphic like
``jnp.linalg.eigh``), a real floating or complex dtype for :func:`eigh` and a real floating dtype for the others.
The input is **symmetrised** as ``(a + aᴴ)/2`` first (as ``jnp.linalg.eigh(symmetrize_input=True)`` does), so a
non-symmetric ``a`` is treated as its symmetric part and its gradient is the symmetrised gradient. NaN/Inf in
``a`` propagate: the LAPACK/XLA eigensolver returns NaN eigenvalues/vectors and everything downstream is NaN
(check eagerly with ``jnp.all(jnp.isfinite(a))`` if needed). Eigenvalues are ascending unless a function
says otherwise. Note that the same call runs a different algorithm on TPU (QDWH) than on CPU/GPU (QR/Jacobi), so
eigenvector signs/rotations (the gauge) differ across backends; compare λ or projectors, never raw vectors.

The derivative rules are ``custom_jvp`` rules (reverse mode follows by transposition). They are first-order
rules: second derivatives differentiate the rule itself (exact ``eigh`` inside).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit._validate import _shape_str, check_array, check_rank_arg, check_square

__all__ = ["EighGrad", "Which", "eigh", "eigh_projector", "spectral_function", "spectral_tensor", "topk_eigh"]


class EighGrad(enum.Enum):
    """Rule for the eigenvector-derivative kernel ``F_ij`` (``Δ_ij = λ_j − λ_i``, ``s = max_i |λ_i|``).

    * ``EXACT``: ``F_ij = 1/Δ_ij`` — JAX's own rule (``jnp.linalg.eigh`` is called unchanged). On an exactly
      repeated eigenvalue the computed ``Δ`` is either 0 (inf/NaN gradients) or rounding noise (``|F| ~ 1e16``:
      finite, meaningless gradients) — which one depends on the matrix, the batch and the backend.
    * ``BROADENED``: Lorentzian ``F_ij = Δ_ij / (Δ_ij² + ε)`` with ``ε = (eps_rel · s)²`` *relative to the
      eigenvalue scale* (Colburn et al. 2021; fmmax#105 for why ε must be relative). Equals the exact rule up to
      a relative ``O((eps_rel·s/Δ)²)`` when ``|Δ| ≫ eps_rel·s``; bounded by ``1/(2·eps_rel·s)``; zero at Δ = 0.
    * ``MASKED``: ``F_ij = 1/Δ_ij`` if ``|Δ_ij| > eps_rel · s`` else ``0`` (Kasim 2020, arXiv 2011.04366):
      identical to exact on separated pairs, drops near-degenerate pairs.
    * ``STRICT``: ``F_ij = 1/Δ_ij`` if ``|Δ_ij| > eps_rel · s`` else NaN: the exact derivative where it exists,
      and NaN in every entry of the gradient (NaN · 0 = NaN) as soon as the eigenvectors are used and any pair is
      (near-)degenerate — deterministic, unlike ``EXACT``'s rounding-dependent inf/NaN/garbage. Used by
      ``eigenkit.graph`` and inside the derivative rules of :func:`spectral_function` / :func:`spectral_tensor`
      (so their second derivatives are NaN, not wrong, at a degenerate point).

    Contract of ``BROADENED`` / ``MASKED`` (eigenvalue derivatives ``dλ_i = v_iᵀ dA v_i`` are exact under every
    rule). Call a group the eigenvectors of one (near-)repeated eigenvalue and ``P_g = V_g V_gᵀ`` its projector.
    Both rules give the **exact** gradient (``MASKED`` exactly, ``BROADENED`` up to ``O((eps_rel·s/gap)²)``) of a
    loss ``L = h(λ, P_1, …, P_G)`` that depends on each group's eigenvectors only through ``P_g`` and on each
    group's eigenvalues only symmetrically, with no pairing of an individual eigenvalue with an individual
    eigenvector of the same group: e.g. ``Σ_i g(λ_i)`` (= ``tr g(A)``), ``tr(C P_g)``, ``‖P_g − T‖²``, eigenvalue
    gaps between groups, :func:`eigh_projector`. They are **finite but wrong** for losses that pair eigenvalues
    with their own eigenvectors inside a group — ``V diag(φ(λ)) Vᵀ`` (SPE's tensor, any matrix function, even
    ``V diag(λ) Vᵀ = A``): the true derivative contains ``φ'(λ)(VᵀdAV)_ij`` for ``i ≠ j`` in the same group,
    which no finite ``F_ij`` can produce (it multiplies ``φ(λ_i) − φ(λ_j) = 0``). Use :func:`spectral_tensor`
    (learned / multi-channel φ) or :func:`spectral_function` (fixed elementwise f) for those. For losses that
    are not basis invariant inside a group (a single eigenvector of a repeated eigenvalue) no gradient exists;
    these rules then return the gradient with that group's basis frozen.
    """

    EXACT = "exact"
    BROADENED = "broadened"
    MASKED = "masked"
    STRICT = "strict"


class Which(enum.Enum):
    """Which end of the spectrum: ``LARGEST`` (descending order) or ``SMALLEST`` (ascending order)."""

    LARGEST = "largest"
    SMALLEST = "smallest"


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _default_eps_rel(dtype) -> float:
    # sqrt(machine eps): 3.5e-4 in float32, 1.5e-8 in float64 — above eigenvalue round-off (~eps·s).
    return float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def _symmetrize(a):
    return (a + jnp.conj(_mT(a))) / 2


def _check_rule(grad_rule):
    if not isinstance(grad_rule, EighGrad):
        raise TypeError(f"grad_rule must be an EighGrad member (e.g. EighGrad.BROADENED), got {grad_rule!r}")


def _check_which(which):
    if not isinstance(which, Which):
        raise TypeError(f"which must be a Which member (Which.LARGEST or Which.SMALLEST), got {which!r}")


def _inverse_gap(delta, scale, rule: EighGrad, eps_rel: float):
    """Elementwise regularised ``1/delta`` according to ``rule``; ``scale`` broadcasts against ``delta``."""
    if rule is EighGrad.BROADENED:
        denom = delta * jnp.conj(delta) + (eps_rel * scale) ** 2
        safe = jnp.where(denom > 0, denom, 1)
        return jnp.where(denom > 0, delta / safe, 0)
    if rule is EighGrad.MASKED:
        keep = jnp.abs(delta) > eps_rel * scale
        return jnp.where(keep, 1 / jnp.where(keep, delta, 1), 0)
    if rule is EighGrad.STRICT:
        n = delta.shape[-1]
        keep = jnp.abs(delta) > eps_rel * scale
        inv = jnp.where(keep, 1 / jnp.where(keep, delta, 1), jnp.nan)
        return jnp.where(jnp.eye(n, dtype=bool), 0, inv)
    # EXACT (used for cross-block gaps of the projector): inf where delta == 0, as the true derivative.
    return 1 / delta


def _scale(w):
    return jnp.max(jnp.abs(w), axis=-1, keepdims=True)[..., None]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _eigh_regularised(a, rule, eps_rel):
    w, v = jnp.linalg.eigh(a, symmetrize_input=False)
    return w, v


@_eigh_regularised.defjvp
def _eigh_regularised_jvp(rule, eps_rel, primals, tangents):
    (a,), (da,) = primals, tangents
    w, v = jnp.linalg.eigh(a, symmetrize_input=False)
    m = jnp.conj(_mT(v)) @ da @ v
    delta = w[..., None, :] - w[..., :, None]  # Δ_ij = λ_j − λ_i
    f = _inverse_gap(delta, _scale(w), rule, eps_rel)
    dw = jnp.real(jnp.diagonal(m, axis1=-2, axis2=-1)).astype(w.dtype)
    dv = v @ (f.astype(m.dtype) * m)
    return (w, v), (dw, dv)


def eigh(a, *, grad_rule: EighGrad = EighGrad.BROADENED, eps_rel: float | None = None):
    """Eigendecomposition ``a = V diag(λ) Vᴴ`` of a symmetric/Hermitian matrix with a safe eigenvector gradient.

    Args:
      a: ``(..., n, n)`` real or complex matrix; symmetrised as ``(a + aᴴ)/2`` (see module docstring).
      grad_rule: :class:`EighGrad` rule for the eigenvector derivative (see its contract: which losses each rule
        differentiates correctly on repeated eigenvalues). Eigenvalue derivatives ``dλ_i = v_iᴴ dA v_i`` are exact
        under every rule. ``BROADENED`` is the default because it is finite everywhere and smooth in ``A``
        (:func:`eigh_projector` defaults to ``EXACT`` instead: its derivative only involves the cross-block gap,
        so the exact rule is finite whenever the block boundary sits in a gap and a regularised one would only
        bias it).
      eps_rel: relative regularisation ``eps_rel · max|λ|`` for ``BROADENED``/``MASKED``; default
        ``sqrt(finfo(dtype).eps)``. Ignored for ``EXACT``.

    Returns:
      ``(w, v)``: eigenvalues ``(..., n)`` ascending (real dtype) and eigenvectors ``(..., n, n)`` as columns.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import eigh, EighGrad
      >>> loss = lambda a: jnp.sum(eigh(a, grad_rule=EighGrad.BROADENED)[1][:, -1] ** 2)
      >>> bool(jnp.all(jnp.isfinite(jax.grad(loss)(jnp.eye(3)))))
      True
    """
    a = check_square(a, "a")
    _check_rule(grad_rule)
    if grad_rule is EighGrad.EXACT:
        w, v = jnp.linalg.eigh(a, symmetrize_input=True)
        return w, v
    eps_rel = _default_eps_rel(jnp.finfo(a.dtype).dtype) if eps_rel is None else float(eps_rel)
    return _eigh_regularised(_symmetrize(a), grad_rule, eps_rel)


def _block_mask(n: int, d: int, which: Which) -> np.ndarray:
    s = np.zeros(n, dtype=bool)
    if which is Which.LARGEST:
        s[n - d:] = True
    else:
        s[:d] = True
    return s


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _projector(a, d, which, rule, eps_rel):
    _, v = jnp.linalg.eigh(a, symmetrize_input=False)
    sel = _block_mask(a.shape[-1], d, which)
    vb = v[..., :, sel]
    return vb @ _mT(vb)


@_projector.defjvp
def _projector_jvp(d, which, rule, eps_rel, primals, tangents):
    (a,), (da,) = primals, tangents
    w, v = jnp.linalg.eigh(a, symmetrize_input=False)
    n = a.shape[-1]
    s = _block_mask(n, d, which)
    sel_v = v[..., :, s]
    p = sel_v @ _mT(sel_v)
    cross = jnp.asarray(s[:, None] != s[None, :])
    sign = jnp.asarray(s[:, None].astype(np.int8) - s[None, :].astype(np.int8))
    delta = w[..., :, None] - w[..., None, :]  # λ_a − λ_b
    safe = jnp.where(cross, delta, 1)
    g = jnp.where(cross, sign.astype(w.dtype) * _inverse_gap(safe, _scale(w), rule, eps_rel), 0)
    m = _mT(v) @ da @ v
    dp = v @ (g * m) @ _mT(v)
    return p, dp


def eigh_projector(
    a,
    d: int,
    *,
    which: Which = Which.LARGEST,
    grad_rule: EighGrad = EighGrad.EXACT,
    eps_rel: float | None = None,
):
    """Orthogonal projector onto the span of the ``d`` largest (or smallest) eigenvectors of a symmetric matrix.

    ``P = Σ_{i∈B} v_i v_iᵀ`` is basis invariant. Its derivative (primitives.md §1, "block-projector gradient")

        dP = Σ_{i∈B, j∉B} (v_iᵀ dA v_j) / (λ_i − λ_j) · (v_i v_jᵀ + v_j v_iᵀ)

    contains only cross-block gaps: within-block terms cancel exactly, so the gradient is exact for any multiplicity
    inside ``B`` or its complement, and finite whenever the block boundary lies in a spectral gap
    (``λ`` just inside ``B`` ≠ ``λ`` just outside). ``grad_rule`` regularises the cross-block gaps only
    (``EXACT`` by default: an infinite derivative if the boundary itself is degenerate, where ``P`` is not
    differentiable — choose ``BROADENED`` or ``MASKED`` to get a finite surrogate there).

    Args:
      a: ``(..., n, n)`` real symmetric matrix (symmetrised first).
      d: static block size, ``1 <= d <= n``.
      which: :class:`Which` end of the spectrum.
      grad_rule: rule for the cross-block ``1/(λ_i − λ_j)``.
      eps_rel: relative regularisation (default ``sqrt(finfo(dtype).eps)``).

    Returns:
      ``(..., n, n)`` projector ``P`` (``P = Pᵀ = P²``, ``tr P = d``).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import eigh_projector
      >>> p = eigh_projector(jnp.diag(jnp.array([1.0, 2.0, 2.0])), 2)
      >>> bool(jnp.allclose(p, jnp.diag(jnp.array([0.0, 1.0, 1.0]))))
      True
    """
    a = check_square(a, "a", kind="floating")
    n = a.shape[-1]
    d = check_rank_arg(d, "d", upper=n, upper_name="n")
    _check_which(which)
    _check_rule(grad_rule)
    eps_rel = _default_eps_rel(a.dtype) if eps_rel is None else float(eps_rel)
    return _projector(_symmetrize(a), d, which, grad_rule, eps_rel)


def _elementwise_derivative(f, x):
    return jax.jvp(f, (x,), (jnp.ones_like(x),))[1]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _spectral(a, f, eps_rel):
    w, v = jnp.linalg.eigh(a, symmetrize_input=False)
    return (v * f(w)[..., None, :]) @ _mT(v)


@_spectral.defjvp
def _spectral_jvp(f, eps_rel, primals, tangents):
    (a,), (da,) = primals, tangents
    w, v = _eigh_regularised(a, EighGrad.STRICT, eps_rel)  # second order: exact, or NaN at degeneracy
    fw = f(w)
    out = (v * fw[..., None, :]) @ _mT(v)
    delta = w[..., :, None] - w[..., None, :]
    close = jnp.abs(delta) <= eps_rel * _scale(w)
    divided = (fw[..., :, None] - fw[..., None, :]) / jnp.where(close, 1, delta)
    mid = (w[..., :, None] + w[..., None, :]) / 2
    k = jnp.where(close, _elementwise_derivative(f, mid), divided)
    m = _mT(v) @ da @ v
    return out, v @ (k * m) @ _mT(v)


def spectral_function(a, f: Callable[[jax.Array], jax.Array], *, eps_rel: float | None = None):
    """Matrix function ``f(A) = V f(Λ) Vᵀ`` of a symmetric matrix, with a degeneracy-safe derivative.

    Derivative (Daleckii–Krein): ``d f(A) = V (K ∘ (Vᵀ dA V)) Vᵀ`` with the first divided differences
    ``K_ij = (f(λ_i) − f(λ_j)) / (λ_i − λ_j)``, replaced by the limit ``f'((λ_i+λ_j)/2)`` when
    ``|λ_i − λ_j| <= eps_rel · max|λ|`` (including ``i = j``). This is exact for repeated eigenvalues (no NaN on
    ``eye(n)`` or the zero matrix as long as ``f'`` is finite there).

    Args:
      a: ``(..., n, n)`` real symmetric matrix (symmetrised first).
      f: an *elementwise* JAX-differentiable function of the eigenvalues (e.g. ``jnp.exp``); static (hashable).
      eps_rel: relative threshold below which the divided difference is replaced by ``f'``
        (default ``sqrt(finfo(dtype).eps)``).

    Returns:
      ``(..., n, n)`` symmetric matrix ``f(A)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import spectral_function
      >>> bool(jnp.allclose(spectral_function(2.0 * jnp.eye(2), jnp.exp), jnp.exp(2.0) * jnp.eye(2)))
      True

    Second order: the derivative rule is itself differentiable, so a Hessian-vector product (``jax.jvp`` of
    ``jax.grad``) is exact where the spectrum is simple and **NaN** at a (near-)degenerate point (within
    ``eps_rel``): the second derivative needs eigenvector derivatives inside the repeated eigenspace, which the
    rule evaluates with :attr:`EighGrad.STRICT`. For a learned or multi-channel φ see :func:`spectral_tensor`.
    """
    a = check_square(a, "a", kind="floating")
    if not callable(f):
        raise TypeError(f"f must be a callable applied elementwise to the eigenvalues, got {type(f).__name__}")
    eps_rel = _default_eps_rel(a.dtype) if eps_rel is None else float(eps_rel)
    return _spectral(_symmetrize(a), f, eps_rel)


def _group_centred_direction(w, eps_rel):
    """Tangent ``u`` on the eigenvalues (``(..., n)``) with zero sum over every (near-)degenerate group.

    Groups are runs of ascending eigenvalues whose neighbours are within ``eps_rel · max|λ|``. Inside a group
    ``u = s − mean_group(s)`` with the alternating pattern ``s = ±1``, which is non-zero on every member of a group
    of size ≥ 2; singletons get ``u = 0``. For a permutation-equivariant φ (``φ(Pλ) = Pφ(λ)``, elementwise or not,
    e.g. coupled through BatchNorm statistics), ``J = ∂φ/∂λ`` restricted to a group of equal eigenvalues is
    ``αI + c·11ᵀ`` and its columns are constant over every other group, so ``(J u)_i = α_i u_i`` — one JVP gives
    every group's within-eigenspace derivative ``α`` (``= φ'(λ)`` for an elementwise φ).
    """
    n = w.shape[-1]
    tol = eps_rel * jnp.max(jnp.abs(w), axis=-1, keepdims=True)
    close_prev = jnp.concatenate(
        [jnp.zeros(w.shape[:-1] + (1,), bool), jnp.abs(jnp.diff(w, axis=-1)) <= tol], axis=-1)
    gid = jnp.cumsum(jnp.logical_not(close_prev), axis=-1)  # group index per eigenvalue
    same = gid[..., :, None] == gid[..., None, :]
    size = jnp.sum(same, axis=-1)
    s = jnp.where(jnp.arange(n) % 2 == 0, 1.0, -1.0).astype(w.dtype)
    s = jnp.broadcast_to(s, w.shape)
    mean = jnp.sum(jnp.where(same, s[..., None, :], 0), axis=-1) / size.astype(w.dtype)
    return jnp.where(size > 1, s - mean, 0).astype(w.dtype)


def _within_eigenspace_derivative(fn, w, eps_rel):
    """``α`` of :func:`_group_centred_direction` for every eigenvalue (0 for simple ones), same shape as ``fn(w)``."""
    u = _group_centred_direction(w, eps_rel)
    _, dz = jax.jvp(fn, (w,), (u,))
    uu = u if dz.ndim == w.ndim else u[..., None]
    return jnp.where(uu != 0, dz / jnp.where(uu != 0, uu, 1), 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _spectral_tensor_core(a, z, alpha, eps_rel):
    _, v = jnp.linalg.eigh(a, symmetrize_input=False)
    return jnp.einsum("...id,...jd,...dl->...ijl", v, v, z)


@_spectral_tensor_core.defjvp
def _spectral_tensor_core_jvp(eps_rel, primals, tangents):
    (a, z, alpha), (da, dz, _) = primals, tangents
    w, v = _eigh_regularised(a, EighGrad.STRICT, eps_rel)  # second order: exact, or NaN at degeneracy
    out = jnp.einsum("...id,...jd,...dl->...ijl", v, v, z)
    m = _mT(v) @ da @ v
    n = w.shape[-1]
    delta = w[..., :, None] - w[..., None, :]
    close = jnp.abs(delta) <= eps_rel * _scale(w)
    offdiag = jnp.logical_not(jnp.eye(n, dtype=bool))
    divided = (z[..., :, None, :] - z[..., None, :, :]) / jnp.where(close, 1, delta)[..., None]
    within = 0.5 * (alpha[..., :, None, :] + alpha[..., None, :, :])
    k = jnp.where(offdiag[..., None], jnp.where(close[..., None], within, divided), 0)
    inner = k * m[..., None] + jnp.eye(n, dtype=z.dtype)[..., None] * dz[..., None, :, :]
    return out, jnp.einsum("...ia,...abl,...jb->...ijl", v, inner, v)


def spectral_tensor(a, phi, *, derivative=None, eps_rel: float | None = None):
    """``W[..., :, :, ℓ] = V diag(φ_ℓ(λ)) Vᵀ`` for a *learned* eigenvalue function φ, with exact gradients.

    This is the SPE tensor (Huang et al. 2024, eq. 2) and, for an elementwise fixed φ, the matrix function
    ``φ(A)``. Its derivative (Daleckii–Krein, generalised to a φ that may couple eigenvalues) is

        dW_ℓ = V (K_ℓ ∘ (Vᵀ dA V) + diag(dz_ℓ)) Vᵀ,   K_ℓ,ij = (z_iℓ − z_jℓ) / (λ_i − λ_j)  (i ≠ j, λ_i ≠ λ_j),

    where ``z = φ(λ)`` and ``dz`` is its full derivative (through ``λ`` *and* through φ's parameters, by
    ordinary autodiff). Inside a (near-)degenerate eigenspace (``|λ_i − λ_j| <= eps_rel · max|λ|``, ``i ≠ j``)
    the divided difference is replaced by its limit, the within-eigenspace derivative ``α`` of φ (``φ'(λ)`` for
    an elementwise φ). That within-eigenspace term ``α · (VᵀdAV)_ij`` is what no eigenvector rule can produce
    (it multiplies ``φ(λ_i) − φ(λ_j) = 0``): ``V diag(φ(λ)) Vᵀ`` built from :func:`eigh` with ``MASKED`` /
    ``BROADENED`` has finite but wrong gradients on repeated eigenvalues (20–46% off on ``diag(1,2,2,2,4,5)``).

    φ may be given two ways:

    * **callable** ``phi(λ)``: ``λ`` ``(..., n)`` ascending → ``(..., n)`` or ``(..., n, m)``. It may close over
      parameters being differentiated. It must be *permutation equivariant* over the eigenvalue axis (equal
      eigenvalues → equal outputs; elementwise functions and elementwise MLPs qualify, also with BatchNorm
      statistics over the batch). ``α`` is computed with one extra JVP of ``derivative`` (default: ``phi``)
      along a direction that sums to zero over each degenerate group, which is exact for any such φ.
      Pass ``derivative=`` a side-effect-free copy of φ if ``phi`` mutates state (e.g. an NNX module updating
      BatchNorm statistics).
    * **array** of values ``z = φ(λ)``: computed by the caller from ``λ = eigh(a)[0]`` (this module's
      :func:`eigh`, ascending, exact eigenvalue derivative) through a differentiable path; then ``derivative``
      is required: either an array ``α`` of the same shape or a callable as above (``α`` is then computed here).

    Second order: the JVP rule is itself differentiable (it recomputes ``jnp.linalg.eigh``), so Hessian-vector
    products are exact where the spectrum is simple, and **NaN at a degenerate point** (the eigenvector
    derivative inside the rule is infinite there; ``α`` is treated as a constant). Use first-order methods there.

    Args:
      a: ``(..., n, n)`` real symmetric matrix (symmetrised first).
      phi: callable or array ``(..., n)`` / ``(..., n, m)`` (see above).
      derivative: callable or array ``α`` (see above); optional for a callable ``phi``.
      eps_rel: relative degeneracy threshold (default ``sqrt(finfo(dtype).eps)``).

    Returns:
      ``(..., n, n, m)`` — or ``(..., n, n)`` when φ returns ``(..., n)`` — in ``a``'s dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import spectral_tensor
      >>> a = jnp.diag(jnp.array([1.0, 2.0, 2.0, 4.0]))  # a repeated eigenvalue
      >>> w = jnp.array([0.5, -1.0])
      >>> loss = lambda x, w: jnp.sum(spectral_tensor(x, lambda lam: jnp.tanh(lam[..., None] * w)) ** 2)
      >>> g = jax.grad(loss)(a, w)
      >>> bool(jnp.all(jnp.isfinite(g))), g.shape
      (True, (4, 4))
    """
    a = check_square(a, "a", kind="floating")
    eps_rel = _default_eps_rel(a.dtype) if eps_rel is None else float(eps_rel)
    a = _symmetrize(a)
    n = a.shape[-1]
    if callable(phi):
        w, _ = eigh(a, grad_rule=EighGrad.MASKED, eps_rel=eps_rel)
        z = phi(w)
        fn = phi if derivative is None else derivative
    else:
        if derivative is None:
            raise TypeError("spectral_tensor: with an array of values phi, pass derivative= (an array of "
                            "within-eigenspace derivatives, or a callable phi to compute them)")
        z = phi
        fn = derivative
        w = jax.lax.stop_gradient(jnp.linalg.eigvalsh(a)) if callable(derivative) else None
    z = check_array(z, "phi(λ)" if callable(phi) else "phi", kind="floating")
    scalar = z.ndim == a.ndim - 1
    if not (scalar or z.ndim == a.ndim) or z.shape[a.ndim - 2] != n:
        raise ValueError(f"phi must give shape (..., n) or (..., n, m) with n = {n} (a has shape "
                         f"{_shape_str(a.shape)}), got {_shape_str(z.shape)}")
    if z.dtype != a.dtype:
        raise TypeError(f"phi must give a's dtype {a.dtype}, got {z.dtype}")
    if callable(fn):
        alpha = _within_eigenspace_derivative(fn, jax.lax.stop_gradient(w), eps_rel)
    else:
        alpha = check_array(fn, "derivative", kind="floating")
        if alpha.shape != z.shape:
            raise ValueError(f"derivative must have phi's shape {_shape_str(z.shape)}, got {_shape_str(alpha.shape)}")
    alpha = jax.lax.stop_gradient(alpha.astype(z.dtype))
    if scalar:
        z, alpha = z[..., None], alpha[..., None]
    z, alpha = jnp.broadcast_arrays(z, alpha)
    batch = jnp.broadcast_shapes(a.shape[:-2], z.shape[:-2])
    a = jnp.broadcast_to(a, batch + a.shape[-2:])
    z = jnp.broadcast_to(z, batch + z.shape[-2:])
    alpha = jnp.broadcast_to(alpha, batch + alpha.shape[-2:])
    out = _spectral_tensor_core(a, z, alpha, eps_rel)
    return out[..., 0] if scalar else out


def topk_eigh(
    a,
    k: int,
    *,
    which: Which = Which.LARGEST,
    grad_rule: EighGrad = EighGrad.BROADENED,
    eps_rel: float | None = None,
):
    """The ``k`` largest (descending) or smallest (ascending) eigenpairs by a full :func:`eigh` and a slice.

    ``O(n³)``; the right choice for small/medium dense ``n`` and under ``vmap``. For large or matrix-free
    operators use :func:`lobpcg_eigh` or :func:`subspace_iteration`.

    Args:
      a: ``(..., n, n)`` symmetric matrix.
      k: static number of eigenpairs, ``1 <= k <= n``.
      which: :class:`Which` end of the spectrum.
      grad_rule, eps_rel: see :func:`eigh`.

    Returns:
      ``(w, v)`` with ``w: (..., k)`` and ``v: (..., n, k)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import topk_eigh, Which
      >>> w, v = topk_eigh(jnp.diag(jnp.array([3.0, 1.0, 2.0])), 2, which=Which.LARGEST)
      >>> w.tolist()
      [3.0, 2.0]
    """
    a = check_square(a, "a")
    k = check_rank_arg(k, "k", upper=a.shape[-1], upper_name="n")
    _check_which(which)
    w, v = eigh(a, grad_rule=grad_rule, eps_rel=eps_rel)
    if which is Which.LARGEST:
        return w[..., ::-1][..., :k], v[..., :, ::-1][..., :, :k]
    return w[..., :k], v[..., :, :k]
