"""The MLC objective (Ding et al., ICCV 2023, arXiv 2301.01805), its membership layer and the TCR pre-training loss.

Conventions (as :mod:`eigenkit.linalg`'s coding rates): samples are **rows** — ``z: (n, d)`` is the paper's ``Zᵀ``
— and ``eps`` is ε (the CPP code's ``eps`` argument is ε²: CPP ``eps=0.1`` ⇔ ``eps=sqrt(0.1)`` here). Every rate
carries CPP's ½ (the paper's eqs. 1–4 do not: paper values are twice ours; the optimum is the same).

Paper equation ↔ function:

* eq. 1 ``R(Z; ε)`` — :func:`eigenkit.linalg.coding_rate`;
* eq. 3 ``Γ = P_{Ω,η}(CᵀC)`` — :func:`membership` (Sinkhorn layer, §3.1);
* eq. 4 ``max R(Z) − R_c(Z, Γ)`` — :func:`mlc_objective` (loss ``−R + γ R_c``, CPP's ``MLCLoss``);
* eq. 5 TCR pre-training ``max R((Z+Z')/2) + λ Σ_i z_iᵀ z'_i`` — :func:`tcr_pretrain_loss`;
* eq. 6 augmentation averaging ``Z = P_S(mean_a Z^{(a)})``, ``Γ = mean_a Γ^{(a)}`` — :func:`mlc_loss_views`.

Under data parallelism these functions are called on the **global** batch (the arrays of a ``jit`` whose inputs are
sharded over the batch axis): XLA all-gathers ``z`` and ``c`` for the ``d × d`` Grams and the ``n × n`` Sinkhorn, so
the loss on 8 devices equals the loss on 1 (CPP gets the same from ``DataParallel``, which gathers the outputs on one
GPU). Averaging per-device losses would be a different objective (coding rates are not additive over sub-batches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array, check_positive
from eigenkit.linalg import SinkhornGrad, coding_rate, compressed_coding_rate, sinkhorn_log

if TYPE_CHECKING:
    from jaxtyping import Array, Float

__all__ = ["membership", "mlc_loss", "mlc_loss_views", "mlc_objective", "sphere_normalize", "tcr_loss",
           "tcr_pretrain_loss"]


def sphere_normalize(x: Float[Array, "... d"], eps: float = 1e-12) -> Float[Array, "... d"]:
    """``x / max(‖x‖₂, eps)`` along the last axis (PyTorch ``F.normalize``; the paper's projection ``P_S``)."""
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def membership(c: Float[Array, "n d"], *, eta: float, n_iter: int = 5, abs_similarity: bool = True,
               grad_mode: SinkhornGrad = SinkhornGrad.STOP_V) -> Float[Array, "n n"]:
    """Doubly stochastic membership ``Γ = P_{Ω,η}(S)`` of MLC eq. 3, ``S = c cᵀ`` (paper) or ``|c cᵀ|`` (CPP).

    Exactly CPP's ``SinkhornDistance(eta, n_iter)(S[None])[0][0] · n`` (``main.py``): a log-domain Sinkhorn with
    ``n_iter`` half-iterations, starting with a row update; with the default odd ``n_iter`` every row of ``Γ`` sums
    to 1 exactly and every column approximately. ``Γ_ij`` is how much sample ``j`` belongs with ``i``; column ``j``
    is the soft cluster of :func:`mlc_objective`.

    Args:
      c: ``(n, d)`` cluster-head outputs, rows on the unit sphere (not checked: un-normalised rows only rescale
        ``S``, i.e. change the effective ``η``).
      eta: entropy weight ``η > 0`` (CPP ``--pieta``: 0.175 for CIFAR-10); smaller gives a sparser ``Γ``.
      n_iter: Sinkhorn half-iterations (CPP ``--piiter`` 5).
      abs_similarity: ``|c cᵀ|`` (CPP; the issue's formulation) instead of the paper's ``c cᵀ``.
      grad_mode: :class:`eigenkit.linalg.SinkhornGrad` — ``STOP_V`` (CPP: the column potential is detached after
        every update) or ``UNROLLED`` (exact derivative of the ``n_iter``-step map).

    Returns:
      ``(n, n)`` nonnegative ``Γ``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods.mlc import membership, sphere_normalize
      >>> c = sphere_normalize(jax.random.normal(jax.random.key(0), (6, 3)))
      >>> g = membership(c, eta=0.175)
      >>> bool(jnp.allclose(g.sum(axis=1), 1.0, atol=1e-5))
      True
    """
    c = check_array(c, "c", ndim=2, kind="floating")
    s = c @ c.T
    if abs_similarity:
        s = jnp.abs(s)
    return sinkhorn_log(s, eta=eta, n_iter=n_iter, grad_mode=grad_mode)


def mlc_objective(z: Float[Array, "n d"], gamma_mat: Float[Array, "n K"], *, eps: float, gamma: float = 1.0,
                  pigam: float = 0.0) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
    """The MLC loss ``−R(Z; ε) + γ R_c(Z, Γ; ε) + pigam · ½‖Γ‖²_F`` (paper eq. 4 with CPP's ½ and γ).

    ``R_c(Z, Γ) = Σ_j t_j/(2n) logdet(I + d/(t_j ε²) zᵀ Diag(Γ_j) z)``, ``t_j = Σ_i Γ_ij`` (≈ 1 for a doubly
    stochastic ``Γ``, as the paper assumes). Equal to CPP's ``MLCLoss(eps=ε², gamma)(z, Γ)[0]`` plus its training
    loop's ``pigam · 0.5 · Γ.norm()**2`` (``pigam`` 0.05 in CPP; the MLC paper has no such term: use 0).
    CPP adds ``1e-8`` to ``t_j``; the difference is a relative ``1e-8``.

    Args:
      z: ``(n, d)`` features, rows on the unit sphere.
      gamma_mat: ``(n, K)`` nonnegative membership (columns are soft clusters), dtype of ``z``: MLC's ``(n, n)``
        ``Γ``, or one-hot labels ``(n, K)`` for the supervised MCR² compression term.
      eps: distortion ε > 0.
      gamma: weight γ of the compression term (CPP ``gamma`` 1).
      pigam: weight of CPP's ``½‖Γ‖²`` regulariser (0 = paper).

    Returns:
      ``(loss, aux)``; ``aux`` has ``"rate"`` (R), ``"compress"`` (R_c) and ``"reg"`` (``½‖Γ‖²``), scalars.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods.mlc import mlc_objective, sphere_normalize
      >>> z = sphere_normalize(jax.random.normal(jax.random.key(0), (8, 4)))
      >>> loss, aux = mlc_objective(z, jnp.eye(8), eps=0.5)  # every point its own cluster
      >>> bool(aux["rate"] > 0), bool(aux["compress"] > 0)
      (True, True)
    """
    z = check_array(z, "z", ndim=2, kind="floating")
    n = z.shape[0]
    gamma_mat = check_array(gamma_mat, "gamma_mat", shape=(n, None), ndim=2, kind="floating")
    check_positive(gamma, "gamma", allow_zero=True)
    check_positive(pigam, "pigam", allow_zero=True)
    rate = coding_rate(z, eps)
    compress = compressed_coding_rate(z, gamma_mat, eps)
    reg = 0.5 * jnp.sum(gamma_mat * gamma_mat)
    loss = -rate + gamma * compress + pigam * reg
    return loss, {"rate": rate, "compress": compress, "reg": reg}


def mlc_loss(z: Float[Array, "n d"], c: Float[Array, "n d"], *, eps: float, eta: float, n_iter: int = 5,
             gamma: float = 1.0, pigam: float = 0.0, abs_similarity: bool = True,
             grad_mode: SinkhornGrad = SinkhornGrad.STOP_V):
    """:func:`mlc_objective` of ``z`` and ``Γ = membership(c)`` (one view); ``aux`` also holds ``"gamma_mat"``.

    The gradient reaches the feature head through ``z`` and the cluster head through ``Γ`` (as in CPP, where both
    heads are trained by the one loss).
    """
    c = check_array(c, "c", ndim=2, kind="floating")
    z = check_array(z, "z", ndim=2, shape=c.shape, kind="floating")
    g = membership(c, eta=eta, n_iter=n_iter, abs_similarity=abs_similarity, grad_mode=grad_mode)
    loss, aux = mlc_objective(z, g, eps=eps, gamma=gamma, pigam=pigam)
    return loss, {**aux, "gamma_mat": g}


def mlc_loss_views(z_views: Float[Array, "A n d"], c_views: Float[Array, "A n d"], **kwargs):
    """MLC with ``A`` augmented views (paper eq. 6): ``Z = P_S(mean_a Z^{(a)})``, ``Γ = mean_a Γ^{(a)}``.

    Args:
      z_views, c_views: ``(A, n, d)`` per-view features and cluster outputs (rows on the sphere).
      **kwargs: as :func:`mlc_loss` (``eps``, ``eta``, ``n_iter``, ``gamma``, ``pigam``, ``abs_similarity``,
        ``grad_mode``).

    Returns:
      ``(loss, aux)`` as :func:`mlc_loss`; ``aux["gamma_mat"]`` is the averaged ``Γ``.
    """
    z_views = check_array(z_views, "z_views", ndim=3, kind="floating")
    c_views = check_array(c_views, "c_views", ndim=3, shape=z_views.shape, kind="floating")
    objective = {k: kwargs.pop(k) for k in ("eps", "gamma", "pigam") if k in kwargs}
    g = jnp.mean(jax.vmap(lambda c: membership(c, **kwargs))(c_views), axis=0)
    z = sphere_normalize(jnp.mean(z_views, axis=0))
    loss, aux = mlc_objective(z, g, **objective)
    return loss, {**aux, "gamma_mat": g}


def tcr_loss(z: Float[Array, "n d"], *, eps: float) -> Float[Array, ""]:
    """Negative total coding rate ``−R(Z; ε)`` (CPP ``TotalCodingRate(eps=ε²)``)."""
    return -coding_rate(z, eps)


def tcr_pretrain_loss(z_views: Float[Array, "A n d"], *, eps: float, lam: float):
    """Self-supervised TCR pre-training (paper §3.2, eq. 5): ``−R(mean_a Z^{(a)}) − λ · mean_i mean_{a≠b} z_iᵀ z_i'``.

    The paper sums the view agreement over samples (``Σ_i |z_iᵀ z'_i|``); here it is averaged over samples and
    view pairs, so ``λ`` does not scale with the batch (NMCE's pre-training weighs its cosine term 100 on a mean as
    well). The absolute value of the paper's agreement term is dropped: agreement is what is rewarded, and
    ``|·|`` would equally reward a view mapped to the antipode.

    Args:
      z_views: ``(A, n, d)`` features of ``A ≥ 2`` augmentations of the same ``n`` samples, rows on the sphere.
      eps: distortion ε.
      lam: weight λ of the view agreement.

    Returns:
      ``(loss, aux)`` with ``aux = {"rate": R(mean), "agreement": mean cosine between views}``.
    """
    z_views = check_array(z_views, "z_views", ndim=3, kind="floating")
    a = z_views.shape[0]
    if a < 2:
        raise ValueError(f"z_views must hold at least 2 views (axis 0), got shape {z_views.shape}")
    rate = coding_rate(jnp.mean(z_views, axis=0), eps)
    gram = jnp.einsum("and,bnd->abn", z_views, z_views)  # per-sample cosine between views a and b
    off = (jnp.sum(gram, axis=(0, 1)) - jnp.trace(gram, axis1=0, axis2=1)) / (a * (a - 1))
    agreement = jnp.mean(off)
    return -rate - lam * agreement, {"rate": rate, "agreement": agreement}
