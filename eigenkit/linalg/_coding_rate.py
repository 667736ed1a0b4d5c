"""Log-determinants of PSD matrices and the MCR² coding rates used by MLC.

**Convention.** ``z: (n, d)`` holds ``n`` samples as *rows* (the MCR²/MLC papers write ``Z ∈ R^{d×n}`` with
samples as columns: their ``Z`` is our ``zᵀ``). ``eps`` is the distortion ``ε`` (not squared). With these,

    R(Z, ε)     = ½ logdet(I_d + d/(n ε²) zᵀ z)                                       (MCR², Yu et al. 2020, eq. 2)
    R_c(Z, Π, ε) = Σ_j t_j/(2n) · logdet(I_d + d/(t_j ε²) zᵀ Diag(Π_j) z),  t_j = Σ_i Π_ij    (MCR² eq. 3)

This matches the CPP/MLC code (``LeslieTrue/CPP`` ``loss/loss_fn.py``: ``TotalCodingRate``, ``MLCLoss``), whose
argument ``eps`` is **ε²** (its argparse help says "eps squared"): CPP ``eps=0.1`` ⇔ ``eps=sqrt(0.1)`` here. The MLC
paper (§2.1, eq. 4) drops the ½ and, for a doubly stochastic ``Γ`` (``t_j = 1``), writes
``R_c = (1/n) Σ_j logdet(I + d/ε² Z Diag(Γ_j) Zᵀ)`` — i.e. paper values are ``2×`` the ones returned here.
CPP adds ``1e-8`` to ``t_j``; here a cluster with ``t_j = 0`` contributes exactly 0 (``Diag(Π_j) = 0``).

The smaller Gram side is used (Sylvester: ``det(I_d + α zᵀz) = det(I_n + α z zᵀ)``), chosen statically from
``n`` and ``d``; symmetric positive definite matrices go through Cholesky (float32-safe).
"""

from __future__ import annotations

import jax.numpy as jnp

from eigenkit._validate import check_array, check_nonempty, check_positive, check_square

__all__ = ["coding_rate", "compressed_coding_rate", "logdet_psd"]


def logdet_psd(a):
    """``log det A`` of a symmetric positive definite ``(..., n, n)`` matrix via Cholesky: ``2 Σ log diag(L)``.

    Only the lower triangle is read. A matrix that is not positive definite (or contains NaN) gives NaN.

    Args:
      a: ``(..., n, n)`` real symmetric positive definite matrix.

    Returns:
      ``(...)`` log-determinants, dtype of ``a``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import logdet_psd
      >>> round(float(logdet_psd(jnp.diag(jnp.array([2.0, 3.0])))), 5) == round(float(jnp.log(6.0)), 5)
      True
    """
    a = check_square(a, "a", kind="floating")
    chol = jnp.linalg.cholesky(a)
    return 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def _check_eps(eps):
    check_positive(eps, "eps")


def coding_rate(z, eps: float):
    """Coding rate ``R(Z, ε) = ½ logdet(I + d/(n ε²) zᵀ z)`` of ``n`` samples in ``R^d`` (see module docstring).

    Args:
      z: ``(n, d)`` samples as rows, real floating.
      eps: distortion ``ε > 0`` (CPP's ``eps`` is ``ε²``).

    Returns:
      ``()`` scalar rate in nats.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.linalg import coding_rate
      >>> z = jnp.eye(4)[:, :2]  # n=4, d=2, zᵀz = I
      >>> bool(jnp.isclose(coding_rate(z, 1.0), jnp.log(1.0 + 2 / 4)))
      True
    """
    z = check_array(z, "z", ndim=2, kind="floating")
    check_nonempty(z, "z")
    _check_eps(eps)
    n, d = z.shape
    alpha = d / (n * eps**2)
    gram = z.T @ z if d <= n else z @ z.T
    eye = jnp.eye(gram.shape[0], dtype=z.dtype)
    return 0.5 * logdet_psd(eye + alpha * gram)


def compressed_coding_rate(z, pi, eps: float):
    """Membership-weighted compressed rate ``R_c(Z, Π, ε)`` of MCR² / MLC (see module docstring).

    ``d <= n``: ``K`` Cholesky logdets of ``d × d`` matrices ``I + α_j zᵀ Diag(Π_j) z``;
    ``d > n``: ``K`` logdets of the ``n × n`` Sylvester form ``I + α_j Diag(Π_j) z zᵀ`` (not symmetric, so by
    LU/``slogdet``; avoids ``sqrt(Π)`` whose derivative is infinite at hard zero memberships).

    Args:
      z: ``(n, d)`` samples as rows.
      pi: ``(n, K)`` nonnegative soft memberships (MLC: ``K = n``, ``Γ`` doubly stochastic; MCR²: one-hot labels).
      eps: distortion ``ε > 0``.

    Returns:
      ``()`` scalar rate in nats.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import coding_rate, compressed_coding_rate
      >>> z = jax.random.normal(jax.random.key(0), (6, 3))
      >>> one = jnp.ones((6, 1))  # a single cluster holding everything: R_c = R
      >>> bool(jnp.isclose(compressed_coding_rate(z, one, 0.5), coding_rate(z, 0.5), rtol=1e-5))
      True
    """
    z = check_array(z, "z", ndim=2, kind="floating")
    n, d = z.shape
    pi = check_array(pi, "pi", ndim=2, shape=(n, None), kind="floating")
    if pi.dtype != z.dtype:
        raise TypeError(f"pi must have the dtype of z ({z.dtype}), got {pi.dtype}")
    check_nonempty(z, "z")
    check_positive(pi, "pi (memberships)", allow_zero=True)
    _check_eps(eps)
    t = jnp.sum(pi, axis=0)  # (K,)
    alpha = d / (jnp.where(t > 0, t, 1) * eps**2)
    if d <= n:
        g = jnp.einsum("nk,nd,ne->kde", pi, z, z)
        eye = jnp.eye(d, dtype=z.dtype)
        logdets = logdet_psd(eye + alpha[:, None, None] * g)
    else:
        zz = z @ z.T
        eye = jnp.eye(n, dtype=z.dtype)
        mats = eye + alpha[:, None, None] * (pi.T[:, :, None] * zz[None])
        _, logdets = jnp.linalg.slogdet(mats)
    return jnp.sum(t * logdets) / (2 * n)
