"""RKHS approximation (upstream) and RKHS regression (downstream) of Zhai et al. (ICLR 2024), on eigenkit.linalg.

* upstream: an encoder ``Φ: X → R^d`` should span the top-d eigenspace of the augmentation operator; the spectral
  contrastive loss (HaoChen et al. 2021, the paper's example of an objective whose optimum is that eigenspace)
  trains one, and :func:`top_d_eigenspace` gives the exact target; :func:`trace_gap` and ``linalg.principal_angles``
  measure how close a learned span is;
* downstream: a linear probe on ``Φ`` (:func:`ridge_probe`) or kernel ridge regression with the augmentation kernel
  itself (:func:`kernel_ridge`, "RKHS regression"). The paper's estimator is norm-constrained (bound B, recalled);
  ridge is the practical surrogate used here.

The toy cube (``{0,1}^L``, i.i.d. masking) has a closed-form spectrum: :func:`walsh_parities` are its
eigenfunctions.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit import linalg
from eigenkit._validate import check_array

__all__ = ["kernel_ridge", "ridge_probe", "spectral_contrastive_loss", "top_d_eigenspace", "trace_gap",
           "walsh_parities"]


def walsh_parities(x: np.ndarray, max_degree: int | None = None) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Walsh parities ``χ_S(x) = Π_{i∈S} (−1)^{x_i}`` of binary sequences, ordered by degree ``|S|``.

    Args:
      x: ``(n, L)`` 0/1 sequences.
      max_degree: largest ``|S|`` (default ``L``).

    Returns:
      ``(chi, subsets)``: ``(n, Σ_{j<=r} C(L, j))`` values ±1 and the subsets ``S`` of each column.

    Example:
      >>> import numpy as np
      >>> from eigenkit.methods.rkhs import walsh_parities
      >>> chi, s = walsh_parities(np.array([[0, 1]]))
      >>> chi.tolist(), s
      ([[1.0, 1.0, -1.0, -1.0]], [(), (0,), (1,), (0, 1)])
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be (n, L), got shape {x.shape}")
    length = x.shape[1]
    r = length if max_degree is None else int(max_degree)
    subsets = [s for j in range(r + 1) for s in itertools.combinations(range(length), j)]
    sign = 1.0 - 2.0 * x.astype(np.float64)
    chi = np.stack([np.prod(sign[:, list(s)], axis=1) if s else np.ones(len(x)) for s in subsets], axis=1)
    return chi, subsets


def top_d_eigenspace(k, d: int):
    """The projector onto the top-``d`` eigenspace of a symmetric kernel matrix and its eigenvalues.

    Uses ``linalg.eigh_projector`` (the projector depends only on the eigenspace; pick ``d`` at a gap: inside a
    degenerate eigenvalue group the top-d space is not defined).

    Args:
      k: ``(n, n)`` symmetric.
      d: dimension.

    Returns:
      ``(proj, lam)``: ``(n, n)`` projector and the ``(n,)`` eigenvalues descending.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import top_d_eigenspace
      >>> p, lam = top_d_eigenspace(jnp.diag(jnp.array([3.0, 1.0, 2.0])), 2)
      >>> jnp.diag(p).round(6).tolist(), lam.tolist()
      ([1.0, 0.0, 1.0], [3.0, 2.0, 1.0])
    """
    k = check_array(k, "k", ndim=2, shape=("n", "n"), kind="floating")
    proj = linalg.eigh_projector(k, d)
    lam = jnp.linalg.eigvalsh(k, symmetrize_input=True)[::-1]
    return proj, lam


def trace_gap(k, phi):
    """``Σ_{i<=d} λ_i(K) − tr(P_Φ K P_Φ)``: the kernel mass the span of ``Φ`` misses relative to the best
    ``d``-dimensional subspace (0 iff ``span Φ`` is a top-d eigenspace; the paper's "trace gap").

    Args:
      k: ``(n, n)`` symmetric PSD kernel (Gram of the operator on the sample, e.g. ``K / n``).
      phi: ``(n, d)`` features on the same points.

    Returns:
      scalar ``>= 0`` (up to rounding).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import trace_gap
      >>> k = jnp.diag(jnp.array([3.0, 2.0, 1.0]))
      >>> float(trace_gap(k, jnp.array([[1.0], [0.0], [0.0]]))), float(trace_gap(k, jnp.array([[0.0], [0.0], [1.0]])))
      (0.0, 2.0)
    """
    k = check_array(k, "k", ndim=2, shape=("n", "n"), kind="floating")
    phi = check_array(phi, "phi", ndim=2, shape=(k.shape[0], None), kind="floating")
    q, _ = jnp.linalg.qr(phi)
    d = phi.shape[1]
    lam = jnp.linalg.eigvalsh(k, symmetrize_input=True)[::-1]
    return jnp.sum(lam[:d]) - jnp.trace(q.T @ k @ q)


def ridge_probe(phi_train, y_train, phi_test, lam: float):
    """Linear probe ``w = (ΦᵀΦ + n λ I)⁻¹ Φᵀ y`` on features (with an intercept column), predictions on ``phi_test``.

    Args:
      phi_train: ``(n, d)``; y_train: ``(n,)`` or ``(n, c)``; phi_test: ``(m, d)``.
      lam: ridge ``λ >= 0`` (scaled by n).

    Returns:
      ``(m,)`` or ``(m, c)`` predictions.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import ridge_probe
      >>> phi = jnp.array([[0.0], [1.0], [2.0]])
      >>> ridge_probe(phi, 2.0 * phi[:, 0] + 1.0, jnp.array([[3.0]]), 0.0).round(4).tolist()
      [7.0]
    """
    phi_train = check_array(phi_train, "phi_train", ndim=2, kind="floating")
    phi_test = check_array(phi_test, "phi_test", ndim=2, shape=(None, phi_train.shape[1]), kind="floating")
    y = check_array(y_train, "y_train", ndim=(1, 2), kind="floating").astype(phi_train.dtype)
    n = phi_train.shape[0]
    a = jnp.concatenate([phi_train, jnp.ones((n, 1), phi_train.dtype)], axis=1)
    b = jnp.concatenate([phi_test, jnp.ones((phi_test.shape[0], 1), phi_test.dtype)], axis=1)
    reg = n * lam * jnp.eye(a.shape[1], dtype=a.dtype).at[-1, -1].set(0.0)  # the intercept is not penalised
    w = jnp.linalg.lstsq(a.T @ a + reg, a.T @ y)[0]
    return b @ w


def kernel_ridge(k_train, y_train, k_test_train, lam: float):
    """RKHS regression: ``f̂(x) = k(x, X)(K + n λ I)⁻¹ y``.

    Args:
      k_train: ``(n, n)`` kernel on the labelled points; y_train: ``(n,)`` or ``(n, c)``.
      k_test_train: ``(m, n)`` kernel between test and labelled points.
      lam: ridge ``λ > 0`` (scaled by n).

    Returns:
      ``(m,)`` or ``(m, c)`` predictions.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import kernel_ridge
      >>> k = jnp.eye(2)
      >>> kernel_ridge(k, jnp.array([1.0, -1.0]), k, 0.5).round(6).tolist()   # y / (1 + n lam)
      [0.5, -0.5]
    """
    k_train = check_array(k_train, "k_train", ndim=2, shape=("n", "n"), kind="floating")
    n = k_train.shape[0]
    k_tt = check_array(k_test_train, "k_test_train", ndim=2, shape=(None, n), kind="floating")
    y = check_array(y_train, "y_train", ndim=(1, 2), kind="floating").astype(k_train.dtype)
    if float(lam) <= 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    factor = jax.scipy.linalg.cho_factor(k_train + n * lam * jnp.eye(n, dtype=k_train.dtype), lower=True)
    return k_tt @ jax.scipy.linalg.cho_solve(factor, y)


def spectral_contrastive_loss(z1, z2):
    """HaoChen et al.'s spectral contrastive loss ``−2 E[z(a)ᵀz(a⁺)] + E_{a, a⁻}[(z(a)ᵀz(a⁻))²]`` on a batch of
    positive pairs ``(z1[i], z2[i])``, negatives = the other rows (cross pairs ``i ≠ j``). Its population minimiser
    spans the top-``d`` eigenspace of the augmentation operator (up to scaling by ``√λ``).

    Args:
      z1, z2: ``(b, d)`` embeddings of two augmentations of the same ``b`` inputs.

    Returns:
      scalar loss.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import spectral_contrastive_loss
      >>> z = jnp.eye(2)
      >>> float(spectral_contrastive_loss(z, z))   # -2 * 1 + 0 (orthogonal negatives)
      -2.0
    """
    z1 = check_array(z1, "z1", ndim=2, kind="floating")
    z2 = check_array(z2, "z2", ndim=2, shape=z1.shape, kind="floating")
    b = z1.shape[0]
    if b < 2:
        raise ValueError(f"spectral_contrastive_loss needs a batch of at least 2 pairs, got {b}")
    pos = jnp.mean(jnp.sum(z1 * z2, axis=1))
    g = z1 @ z2.T
    off = (jnp.sum(g * g) - jnp.sum(jnp.diagonal(g) ** 2)) / (b * (b - 1))
    return -2.0 * pos + off
