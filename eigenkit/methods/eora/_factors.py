"""EoRA low-rank compensation factors (Liu et al. 2024, arXiv:2410.21271, §3 Eq. 3-6) and the plain-SVD baseline.

Problem: given the compression error ``ΔW = W − W_c`` (``d_out × d_in``) and the input covariance
``S = E[x xᵀ]`` (``d_in × d_in``), find ``B`` (``d_out × r``), ``A`` (``r × d_in``) minimising the layer-output error
``‖(ΔW − B A) Xᵀ‖_F² = tr((ΔW − BA) S (ΔW − BA)ᵀ)``. With any square root ``S = L Lᵀ`` the minimiser is
``B A = [ΔW L]_r L⁻¹`` (Eckart–Young on ``ΔW L``, paper Eq. 3-6), and the residual equals the tail singular values
of ``ΔW L``.

Two forms of the same minimiser (:class:`EoraForm`):

* ``PROJECTION`` (default): with ``ΔW L = U Σ Vᵀ``, ``Σ_r V_rᵀ = U_rᵀ ΔW L``, so ``[ΔW L]_r L⁻¹ = U_r U_rᵀ ΔW``: the
  minimiser projects ``ΔW`` on the top-``r`` eigenvectors ``U_r`` of the *output-side* matrix ``ΔW S ΔWᵀ`` (whose
  eigenvalues are ``Σ²``). Factors ``B = U_r Σ_r^{1/2}``, ``A = Σ_r^{-1/2} U_rᵀ ΔW`` — the paper's ``B`` and ``A``
  exactly when ``S`` is nonsingular, and still well defined when it is not: no ``S^{-1/2}``, so no eigenvalue of
  ``S`` is ever clamped or dropped (computed from the SVD of ``ΔW L`` with the Jacobi-scaled square root
  :func:`covariance_root`, accurate in float32). This matters on LLMs with massive-activation channels (SmolLM2's
  block-11 ``down_proj`` input has ``λ1/λ2 ≈ 1e4``): a relative cut of ``S``'s spectrum throws away real input
  directions.
* ``WHITENED``: the paper's computation, ``S = Q Λ Qᵀ``, ``L = Q Λ^{1/2}``, SVD of ``ΔW L``, ``B = U_r Σ_r^{1/2}``,
  ``A = Σ_r^{1/2} V_rᵀ Λ^{-1/2} Qᵀ``, with an :class:`EigenClamp` rule for ``Λ^{-1/2}`` (default ``NVLABS_MINPOS``,
  the official rule). Pass ``cov`` in float64 to match the official code (``eigh`` in float64, ``L``, ``L⁻¹`` cast
  to float32).

* :func:`eora_factors_cholesky` — a float32 path for accelerators without float64 (TPU): ``S + δI = L Lᵀ``
  (Cholesky), the same SVD, and ``A = Σ_r^{1/2} V_rᵀ L⁻¹`` by a triangular solve.
* :func:`svd_factors` — ZeroQuant-V2-style baseline: truncated SVD of ``ΔW`` itself (``S = I``).

Eigenvalue clamps (:class:`EigenClamp`, re-exported here; ``WHITENED`` form only):

* ``NVLABS_MINPOS`` (NVlabs ``eora.py``, default): negative eigenvalues are replaced by the smallest positive one.
  Exact zeros are kept (then ``Λ^{-1/2}`` is infinite, as in the official code) and a spectrum with no positive
  eigenvalue gives non-finite factors (the official code crashes there).
* ``PINV_RTOL`` (GPTQModel): keep ``λ > λ_max · min(1, d · eps_f32)``, zero the others in ``Λ^{1/2}`` and
  ``Λ^{-1/2}`` (truncated pseudo-inverse). The cut is relative to ``λ_max``: with a dominant outlier eigenvalue it
  drops real directions (on SmolLM2 ~494 of 1,536 for ``down_proj``), so it is an option, not a default.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

from eigenkit._validate import check_array, check_rank_arg, check_square
from eigenkit.linalg import EigenClamp, cholesky_factor, eigh_sqrt_factors, truncated_svd


class EoraForm(enum.Enum):
    """How :func:`eora_factors` computes the EoRA minimiser ``B A = [ΔW L]_r L⁻¹`` (see the module docstring)."""

    PROJECTION = "projection"  # B A = U_r U_rᵀ ΔW, U_r from the SVD of ΔW L: no S^{-1/2} (default)
    WHITENED = "whitened"  # the paper's L = QΛ^{1/2}, SVD(ΔW L), L⁻¹ with an EigenClamp (official code)


def _check(delta, cov, rank):
    delta = check_array(delta, "delta", ndim=2, kind="floating")
    d_out, d_in = delta.shape
    if cov is not None:
        cov = check_square(cov, "cov", kind="floating")
        if cov.shape != (d_in, d_in):
            raise ValueError(f"cov must have shape (d_in, d_in) = ({d_in}, {d_in}) to match delta, got {cov.shape}")
    rank = check_rank_arg(rank, "rank", upper=min(d_out, d_in), upper_name="min(d_out, d_in)")
    return delta, cov, rank


def _split_sigma(m, rank):
    """Truncated SVD ``m ≈ U_r Σ_r V_rᵀ`` split as ``(U_r Σ_r^{1/2}, Σ_r^{1/2} V_rᵀ)`` (eigenkit.linalg's SVD; its sign
    convention flips matching columns and rows, so the product is unchanged bit for bit)."""
    u, s, vt = truncated_svd(m, rank)
    root = jnp.sqrt(s)
    return u * root[None, :], root[:, None] * vt


def eigen_sqrt(
    cov: Float[Array, "d d"], *, clamp: EigenClamp = EigenClamp.NVLABS_MINPOS
) -> tuple[Float[Array, "d d"], Float[Array, "d d"]]:
    """Eigen square root ``L = Q Λ^{1/2}`` and its (pseudo-)inverse ``L⁻¹ = Λ^{-1/2} Qᵀ`` of a symmetric ``cov``:
    :func:`eigenkit.linalg.eigh_sqrt_factors` (the primitive lives in linalg; this name is kept for EoRA users).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.eora import eigen_sqrt
      >>> l, li = eigen_sqrt(jnp.eye(2) * 4.0)
      >>> float(l[0, 0] ** 2 + l[0, 1] ** 2)
      4.0
    """
    return eigh_sqrt_factors(cov, clamp=clamp)


def covariance_root(cov: Float[Array, "d d"]) -> Float[Array, "d d"]:
    """A square root ``L`` with ``L Lᵀ = S`` for the ``PROJECTION`` form, accurate for badly scaled covariances.

    Jacobi scaling ``S = D C D`` (``D = diag(S)^{1/2}``; a zero diagonal entry is scaled by 1), then ``L = D R`` with
    ``R`` the Cholesky factor of the correlation ``C`` when ``C`` is numerically positive definite, else
    ``R = Q Λ₊^{1/2}`` from ``eigh(C)`` (negative round-off eigenvalues set to 0). Massive-activation channels make
    ``S`` badly scaled but leave ``C`` well conditioned, so ``L`` is accurate column by column even in float32, where a
    factorisation of ``S`` itself loses ``λ_max / λ`` of relative accuracy. Nothing is inverted or dropped.

    Example:
      >>> s = jnp.array([[1e6, 10.0], [10.0, 1.0]])
      >>> l = covariance_root(s)
      >>> bool(jnp.allclose(l @ l.T, s))
      True
    """
    cov = check_square(cov, "cov", kind="floating")
    diag = jnp.diagonal(cov)
    scale = jnp.sqrt(jnp.where(diag > 0, diag, 1.0))
    corr = cov / scale[:, None] / scale[None, :]
    chol = jnp.linalg.cholesky(corr)

    def eigen_root(c):
        lam, q = jnp.linalg.eigh(c)
        return q * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :]

    root = jax.lax.cond(jnp.all(jnp.isfinite(chol)), lambda c: chol, eigen_root, corr)
    return scale[:, None] * root


def _top_left_singular(g, rank):
    """Top-``rank`` left singular vectors and values of ``g``.

    float32: the SVD of ``g`` (backward stable; the Gram matrix would square ``g``'s condition number, which float32
    cannot afford). float64: ``eigh`` of the smaller Gram matrix (``g gᵀ``, or ``gᵀ g`` with ``U = g V Σ⁻¹``), several
    times faster on CPU; its rounding is ``eps_f64 · κ(g)²``, below float32 resolution for ``κ(g) < 1e4`` and, for
    the EoRA product ``U_r U_rᵀ ΔW``, only the top-``r`` subspace matters.
    """
    if g.dtype != jnp.float64:
        u, sig, _ = truncated_svd(g, rank)
        return u, sig
    m, n = g.shape
    gram = g @ g.T if m <= n else g.T @ g
    lam, v = jnp.linalg.eigh(gram)
    lam, v = lam[::-1][:rank], v[:, ::-1][:, :rank]
    sig = jnp.sqrt(jnp.maximum(lam, 0.0))
    if m <= n:
        u = v
    else:
        u = (g @ v) / jnp.where(sig > 0, sig, 1.0)[None, :]
    idx = jnp.argmax(jnp.abs(u), axis=0)  # deterministic sign: largest entry of each column positive
    sign = jnp.sign(u[idx, jnp.arange(u.shape[1])])
    return u * jnp.where(sign == 0, 1.0, sign)[None, :], sig


def eora_factors_from_root(
    delta: Float[Array, "d_out d_in"], root: Float[Array, "d_in d_in"], rank: int
) -> tuple[Float[Array, "d_out r"], Float[Array, "r d_in"]]:
    """The ``PROJECTION`` form of :func:`eora_factors` from a square root ``L Lᵀ = S`` (:func:`covariance_root`;
    layers that share an input, e.g. q/k/v, share one root). Runs in the dtype of ``root``.

    ``U_r, Σ_r``: top singular pairs of ``ΔW L`` (an SVD in float32, the smaller Gram matrix's ``eigh`` in float64);
    ``B = U_r Σ_r^{1/2}``, ``A = Σ_r^{-1/2} U_rᵀ ΔW``. Singular values below ``σ_1 · n · eps`` are round-off: those
    columns of ``B`` and rows of ``A`` are set to zero.
    """
    delta, _, rank = _check(delta, None, rank)
    d = delta.astype(root.dtype)
    u, sig = _top_left_singular(d @ root, rank)
    keep = sig > sig[0] * (max(d.shape) * float(jnp.finfo(root.dtype).eps))
    sq = jnp.sqrt(jnp.where(keep, sig, 1.0))
    b = jnp.where(keep[None, :], u * sq[None, :], 0.0)
    a = jnp.where(keep[:, None], (u.T @ d) / sq[:, None], 0.0)
    return b.astype(delta.dtype), a.astype(delta.dtype)


def eora_factors(
    delta: Float[Array, "d_out d_in"],
    cov: Float[Array, "d_in d_in"],
    rank: int,
    *,
    form: EoraForm = EoraForm.PROJECTION,
    clamp: EigenClamp = EigenClamp.NVLABS_MINPOS,
) -> tuple[Float[Array, "d_out r"], Float[Array, "r d_in"]]:
    """EoRA factors ``(B, A)`` with ``W ≈ W_c + B A`` (paper Eq. 3-6; NVlabs ``llama_sequential_eigen``).

    ``B A = [ΔW L]_r L⁻¹ = U_r U_rᵀ ΔW`` minimises ``tr((ΔW − BA) S (ΔW − BA)ᵀ)`` over rank-``r`` products
    (``U_r``: top eigenvectors of ``ΔW S ΔWᵀ``). This is the function the experiment's driver calls for every layer.

    Args:
      delta: ``ΔW = W − W_c``, ``(d_out, d_in)``; sets the output dtype.
      cov: ``(d_in, d_in)`` input covariance; the eigendecomposition runs in its dtype (float64 = the official
        code's precision), the factors are then cast to ``delta.dtype``.
      rank: static ``1 <= r <= min(d_out, d_in)``.
      form: :class:`EoraForm` — ``PROJECTION`` (default, no ``S^{-1/2}``) or ``WHITENED`` (the paper's computation).
      clamp: :class:`EigenClamp` for ``Λ^{-1/2}`` in the ``WHITENED`` form (ignored by ``PROJECTION``).

    Returns:
      ``B`` ``(d_out, r)`` and ``A`` ``(r, d_in)`` in ``delta.dtype`` (``B = U_r Σ_r^{1/2}``, ``A = Σ_r^{-1/2} U_rᵀ
      ΔW``, ``Σ_r`` the top singular values of ``ΔW L``; ``WHITENED``: ``A = Σ_r^{1/2} V_rᵀ L⁻¹``, equal for a
      nonsingular ``S``).

    Raises:
      ValueError: shape mismatch or ``rank`` out of range. TypeError: ``form`` / ``clamp`` of the wrong type.

    Example:
      >>> import jax
      >>> k = jax.random.key(0)
      >>> d = jax.random.normal(k, (4, 3))
      >>> b, a = eora_factors(d, jnp.eye(3), 3)
      >>> bool(jnp.allclose(b @ a, d, atol=1e-5))
      True
    """
    delta, cov, rank = _check(delta, cov, rank)
    if not isinstance(form, EoraForm):
        raise TypeError(f"form must be an EoraForm, got {form!r}")
    if form is EoraForm.PROJECTION:
        return eora_factors_from_root(delta, covariance_root(cov), rank)
    l, l_inv = eigen_sqrt(cov, clamp=clamp)
    return eora_factors_from_sqrt(delta, l, l_inv, rank)


def eora_factors_from_sqrt(
    delta: Float[Array, "d_out d_in"],
    l: Float[Array, "d_in d_in"],
    l_inv: Float[Array, "d_in d_in"],
    rank: int,
) -> tuple[Float[Array, "d_out r"], Float[Array, "r d_in"]]:
    """The ``WHITENED`` form of :func:`eora_factors` from a precomputed ``(L, L⁻¹)`` (:func:`eigen_sqrt`; layers that
    share an input, e.g. q/k/v, can share one eigendecomposition). ``L``, ``L⁻¹`` are cast to ``delta.dtype``."""
    delta, _, rank = _check(delta, None, rank)
    l, l_inv = l.astype(delta.dtype), l_inv.astype(delta.dtype)
    b, a = _split_sigma(delta @ l, rank)
    return b, a @ l_inv


def eora_factors_cholesky(
    delta: Float[Array, "d_out d_in"],
    cov: Float[Array, "d_in d_in"],
    rank: int,
    *,
    damp: float = 0.0,
) -> tuple[Float[Array, "d_out r"], Float[Array, "r d_in"]]:
    """EoRA factors through Cholesky whitening (float32-safe; no ``eigh``, no float64).

    ``S + δ·mean(diag S)·I = L Lᵀ``, ``ΔW L = U Σ Vᵀ``, ``B = U_r Σ_r^{1/2}``, ``A = Σ_r^{1/2} V_rᵀ L⁻¹`` (triangular
    solve). Same product ``B A`` as :func:`eora_factors` when ``S`` is positive definite and ``damp = 0``.

    Args:
      delta: ``(d_out, d_in)`` compression error.
      cov: ``(d_in, d_in)`` covariance, cast to ``delta.dtype``.
      rank: static ``1 <= r <= min(d_out, d_in)``.
      damp: relative diagonal damping ``δ`` (use e.g. ``1e-6`` when ``S`` may be singular, i.e. fewer calibration
        tokens than ``d_in``; a singular undamped ``S`` gives NaN).

    Returns:
      ``(B, A)`` as in :func:`eora_factors`.

    Example:
      >>> import jax
      >>> d = jax.random.normal(jax.random.key(0), (4, 3))
      >>> b, a = eora_factors_cholesky(d, 2.0 * jnp.eye(3), 2)
      >>> b.shape, a.shape
      ((4, 2), (2, 3))
    """
    delta, cov, rank = _check(delta, cov, rank)
    chol = cholesky_factor(cov.astype(delta.dtype), jitter_rel=damp)  # δ·mean(diag S) = δ·tr(S)/d
    b, a_white = _split_sigma(delta @ chol, rank)
    # A = a_white L^{-1}  <=>  L^T A^T = a_white^T
    a = jsl.solve_triangular(chol, a_white.T, lower=True, trans="T").T
    return b, a


def svd_factors(
    delta: Float[Array, "d_out d_in"], rank: int
) -> tuple[Float[Array, "d_out r"], Float[Array, "r d_in"]]:
    """Plain truncated SVD of ``ΔW`` (ZeroQuant-V2 / NVlabs ``llama_sequential_svd``): ``B = U_r Σ_r^{1/2}``,
    ``A = Σ_r^{1/2} V_rᵀ``; minimises ``‖ΔW − BA‖_F`` (not the activation error).

    Example:
      >>> b, a = svd_factors(jnp.eye(3), 1)
      >>> b.shape
      (3, 1)
    """
    delta, _, rank = _check(delta, None, rank)
    return _split_sigma(delta, rank)


def activation_error(
    delta: Float[Array, "d_out d_in"],
    b: Float[Array, "d_out r"],
    a: Float[Array, "r d_in"],
    cov: Float[Array, "d_in d_in"],
) -> Float[Array, ""]:
    """``sqrt(tr((ΔW − BA) S (ΔW − BA)ᵀ))`` = ``‖(ΔW − BA) Xᵀ‖_F`` for ``S = XᵀX`` (the EoRA objective)."""
    r = delta - b @ a
    return jnp.sqrt(jnp.maximum(jnp.sum((r @ cov) * r), 0.0))


def compensated_linear(
    x: Float[Array, "... d_in"],
    w_c: Float[Array, "d_out d_in"],
    b: Float[Array, "d_out r"],
    a: Float[Array, "r d_in"],
) -> Float[Array, "... d_out"]:
    """``y = x W_cᵀ + (x Aᵀ) Bᵀ`` (NVlabs ``compressed_lowrankLinear``), without forming ``W_c + BA``."""
    return x @ w_c.T + (x @ a.T) @ b.T


__all__ = [
    "EigenClamp",
    "EoraForm",
    "activation_error",
    "compensated_linear",
    "covariance_root",
    "eigen_sqrt",
    "eora_factors",
    "eora_factors_cholesky",
    "eora_factors_from_root",
    "eora_factors_from_sqrt",
    "svd_factors",
]
