"""Augmentation kernels, their spectra and the augmentation complexity (Zhai, Liu, Risteski, Kolter & Ravikumar,
"Understanding Augmentation-based Self-Supervised Representation Learning via RKHS Approximation and Regression",
ICLR 2024, arXiv:2306.00788).

The augmentation ``p(a | x)`` defines ``Γ: L²(P_A) → L²(P_X)``, ``(Γg)(x) = E[g(A) | x]``; ``ΓΓ*`` is the integral
operator on ``L²(P_X)`` of the **augmentation kernel**

    K_X(x, x') = Σ_a p(a | x) p(a | x') / p(a),      p(a) = Σ_x P_X(x) p(a | x)                    (1)

(the paper's Sec. 2; HaoChen et al.'s normalised positive-pair density ratio). Its eigenpairs ``1 = λ₀ ≥ λ₁ ≥ ...``
(``ψ₀`` constant) define the induced RKHS, and the **augmentation complexity** is ``κ² = sup_x K_X(x, x)``
(Definition 2, "the L∞ norm of the induced kernel"; the exact normalisation of the paper is recalled, not checked
against the PDF — ``shared/methods/rkhs.md``).

For i.i.d. masking of each of ``L`` tokens with probability ``α`` (``a_i = [M]``, else ``a_i = x_i``) under the
uniform ``P_X`` on ``V^L`` sequences, (1) factorises over positions:

    K_X(x, x') = Π_i (α + V (1 − α) 1[x_i = x'_i]),    κ² = (α + V (1 − α))^L = (2 − α)^L for V = 2       (2)

and (``V = 2``) the eigenfunctions are the Walsh parities ``χ_S`` with ``λ_S = (1 − α)^{|S|}``, multiplicity
``C(L, |S|)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit import linalg
from eigenkit._validate import check_array

__all__ = [
    "augmentation_kernel",
    "kappa_sq",
    "kernel_spectrum",
    "masking_augmentations",
    "masking_kernel",
    "mc_kappa_sq",
]

MASK = -1  #: the mask token in augmented sequences


def masking_kernel(x, x_prime, alpha: float, vocab_size: int = 2):
    """Eq. (2): the i.i.d.-masking augmentation kernel between token sequences, uniform ``P_X``.

    Args:
      x: int ``(n, L)`` token ids in ``[0, vocab_size)``.
      x_prime: int ``(m, L)``.
      alpha: mask probability per token, ``0 <= alpha <= 1`` (a traced value is allowed: the kernel is
        differentiable in ``alpha``).
      vocab_size: ``V``.

    Returns:
      ``(n, m)`` kernel ``Π_i (α + V(1−α) 1[x_i = x'_i]) = (α + V(1−α))^h α^(L−h)`` with ``h`` the number of
      agreeing positions, float32 (float64 under x64).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import masking_kernel
      >>> x = jnp.array([[0, 1], [1, 1]])
      >>> masking_kernel(x, x, 0.5).tolist()   # (0.5 + 1)^2 = 2.25 on the diagonal, (0.5 + 1) * 0.5 off it
      [[2.25, 0.75], [0.75, 2.25]]
    """
    x = check_array(x, "x", ndim=2, kind="integer")
    x_prime = check_array(x_prime, "x_prime", ndim=2, shape=(None, x.shape[1]), kind="integer")
    if not isinstance(alpha, jax.core.Tracer) and not 0.0 <= float(alpha) <= 1.0:  # differentiable in alpha
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    dtype = jnp.result_type(float)
    length = x.shape[1]
    # agreements h(x, x') = #{i: x_i = x'_i} by a one-hot matmul (exact integer counts; memory n x m, not n x m x L)
    onehot = lambda t: jax.nn.one_hot(t, vocab_size, dtype=dtype).reshape(t.shape[0], -1)  # noqa: E731
    agree = onehot(x) @ onehot(x_prime).T
    alpha = jnp.asarray(alpha, dtype)
    return jnp.power(alpha + vocab_size * (1.0 - alpha), agree) * jnp.power(alpha, length - agree)


def augmentation_kernel(p_a_given_x, p_x=None):
    """Eq. (1) by enumeration for small discrete spaces: ``K_X = P diag(1/p(a)) Pᵀ`` with ``p(a) = p_xᵀ P``.

    Args:
      p_a_given_x: ``(n_x, n_a)`` row-stochastic ``P[x, a] = p(a | x)``.
      p_x: ``(n_x,)`` the data distribution (default uniform).

    Returns:
      ``(n_x, n_x)`` kernel (augmented states with ``p(a) = 0`` are dropped).

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import augmentation_kernel
      >>> augmentation_kernel(jnp.eye(3)).tolist()   # no augmentation: K = I / P_X = 3 I
      [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]
    """
    p = check_array(p_a_given_x, "p_a_given_x", ndim=2, kind="floating")
    n_x = p.shape[0]
    w = jnp.full((n_x,), 1.0 / n_x, p.dtype) if p_x is None else check_array(p_x, "p_x", shape=(n_x,), ndim=1,
                                                                              kind="floating").astype(p.dtype)
    pa = w @ p
    inv = jnp.where(pa > 0, 1.0 / jnp.where(pa > 0, pa, 1.0), 0.0)
    return (p * inv) @ p.T


def kernel_spectrum(k, p_x=None):
    """Eigenpairs of the integral operator ``(Tf)(x) = Σ_x' K(x, x') f(x') P_X(x')`` on ``L²(P_X)``.

    Computed from the symmetric ``D^{1/2} K D^{1/2}`` (``D = diag(P_X)``); eigenfunctions are returned as
    ``ψ = D^{-1/2} u``, orthonormal in ``L²(P_X)`` (``Σ_x P_X(x) ψ_i(x) ψ_j(x) = δ_ij``).

    Args:
      k: ``(n, n)`` symmetric PSD kernel on the support of ``P_X``.
      p_x: ``(n,)`` probabilities (default uniform).

    Returns:
      ``(lam, psi)``: eigenvalues ``(n,)`` descending and eigenfunctions ``(n, n)`` as columns.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import kernel_spectrum, masking_kernel
      >>> x = jnp.array([[0], [1]])
      >>> lam, _ = kernel_spectrum(masking_kernel(x, x, 0.25))   # 1 and 1 - alpha
      >>> [round(float(v), 6) for v in lam]
      [1.0, 0.75]
    """
    k = check_array(k, "k", ndim=2, shape=("n", "n"), kind="floating")
    n = k.shape[0]
    w = jnp.full((n,), 1.0 / n, k.dtype) if p_x is None else check_array(p_x, "p_x", shape=(n,), ndim=1,
                                                                          kind="floating").astype(k.dtype)
    s = jnp.sqrt(w)
    # eigenkit.linalg.eigh with the STRICT rule: the cube's spectrum is massively degenerate, and eigenvector
    # gradients there are NaN rather than finite and wrong (projectors: use top_d_eigenspace / linalg.eigh_projector)
    lam, u = linalg.eigh(s[:, None] * k * s[None, :], grad_rule=linalg.EighGrad.STRICT)
    lam, u = lam[::-1], u[:, ::-1]
    return lam, u / s[:, None]


def kappa_sq(k):
    """Augmentation complexity ``κ² = sup_x K_X(x, x)`` (Definition 2) of a kernel matrix on the support.

    Args:
      k: ``(n, n)`` kernel (or ``(n,)`` its diagonal).

    Returns:
      scalar ``max_x K(x, x)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import kappa_sq, masking_kernel
      >>> x = jnp.array([[0, 0, 0], [1, 0, 1]])
      >>> round(float(kappa_sq(masking_kernel(x, x, 0.5))), 6)   # (2 - 0.5)^3
      3.375
    """
    k = check_array(k, "k", ndim=(1, 2), kind="floating")
    return jnp.max(jnp.diagonal(k) if k.ndim == 2 else k)


def masking_augmentations(x: np.ndarray, alpha: float, vocab_size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Every augmentation of every sequence under i.i.d. masking, for enumeration (host NumPy, small ``L``).

    Args:
      x: int ``(n, L)`` sequences (the support of ``P_X``).
      alpha: mask probability per token.
      vocab_size: ``V`` (the augmented alphabet is ``V + 1`` symbols with :data:`MASK`).

    Returns:
      ``(a, P)``: the ``(V+1)^L`` augmented sequences ``(n_a, L)`` (``-1`` = mask) and ``P[x, a] = p(a | x)``
      ``(n, n_a)``, float64.

    Example:
      >>> import numpy as np
      >>> from eigenkit.methods.rkhs import masking_augmentations
      >>> a, p = masking_augmentations(np.array([[0], [1]]), 0.25)
      >>> a.ravel().tolist(), p.tolist()
      ([-1, 0, 1], [[0.25, 0.75, 0.0], [0.25, 0.0, 0.75]])
    """
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"x must be an int (n, L) array, got {x.dtype} {x.shape}")
    n, length = x.shape
    if (vocab_size + 1) ** length > 2_000_000:
        raise ValueError(f"{(vocab_size + 1) ** length} augmented states for L = {length}: enumerate only small L")
    a = np.array(list(itertools.product(range(-1, vocab_size), repeat=length)), dtype=np.int64).reshape(-1, length)
    masked = a[None, :, :] == MASK
    keep = a[None, :, :] == x[:, None, :]
    per = np.where(masked, alpha, np.where(keep, 1.0 - alpha, 0.0))
    return a, per.prod(-1)


def mc_kappa_sq(sample: Callable[[jax.Array, jax.Array], jax.Array],
                log_p: Callable[[jax.Array, jax.Array], jax.Array], x, *, key, n_aug: int = 256):
    """Monte-Carlo augmentation complexity for augmentations without a product formula (span masking):
    ``κ² = max_x K(x, x) = max_x E_{a ~ p(·|x)} [p(a | x) / p(a)]`` with ``p(a) = mean_x' p(a | x')`` over the
    support ``x`` (uniform ``P_X``).

    Args:
      sample: ``sample(key, x_i) -> a`` one augmentation of one sequence.
      log_p: ``log_p(a, x_i) -> log p(a | x_i)``.
      x: ``(n, ...)`` the support (every sequence; uniform weights).
      key: PRNG key.
      n_aug: augmentations drawn per sequence.

    Returns:
      ``(kappa_sq, diag)``: the estimate and the per-sequence estimates of ``K(x, x)`` ``(n,)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods.rkhs import mc_kappa_sq
      >>> x = jnp.array([[0], [1]])
      >>> def sample(k, xi):   # mask with probability 1/2
      ...     return jnp.where(jax.random.bernoulli(k, 0.5, xi.shape), -1, xi)
      >>> def log_p(a, xi):
      ...     return jnp.sum(jnp.where(a == -1, jnp.log(0.5), jnp.where(a == xi, jnp.log(0.5), -jnp.inf)))
      >>> k2, _ = mc_kappa_sq(sample, log_p, x, key=jax.random.key(0), n_aug=4000)
      >>> bool(abs(float(k2) - 1.5) < 0.05)   # exact (2 - 1/2)^1
      True
    """
    x = jnp.asarray(x)
    n = x.shape[0]

    def one(k, xi):
        a = jax.vmap(sample, in_axes=(0, None))(jax.random.split(k, n_aug), xi)           # (n_aug, ...)
        lp_all = jax.vmap(lambda aa: jax.vmap(lambda xj: log_p(aa, xj))(x))(a)           # (n_aug, n)
        lp_self = jax.vmap(lambda aa: log_p(aa, xi))(a)
        log_pa = jax.scipy.special.logsumexp(lp_all, axis=1) - jnp.log(n)
        return jnp.mean(jnp.exp(lp_self - log_pa))

    diag = jax.vmap(one)(jax.random.split(key, n), x)
    return jnp.max(diag), diag
