"""Log-domain Sinkhorn projection of a similarity matrix onto a transport polytope (MLC membership layer).

MLC (Ding et al., ICCV 2023, arXiv 2301.01805, §3.1 eq. 3) computes the doubly stochastic membership
``Γ = P_{Ω,η}(CᵀC)`` with an entropy-regularised Sinkhorn layer. The closest runnable code is the authors' CPP
repository, ``LeslieTrue/CPP`` @ ``cb39bdc`` ``model/sink_distance.py::SinkhornDistance`` (official MLC code could
was not available to us). Its semantics, reproduced here by ``SinkhornGrad.STOP_V``:

* kernel ``π = exp((c + u 1ᵀ + 1 vᵀ) / η)`` with ``c`` the similarity (CPP passes ``|CᵀC|``, cost ``−c``);
* ``u = v = 0`` at start; iteration ``t = 0, …, n_iter−1`` updates ``u`` when ``t`` is even and ``v`` when odd:
  ``u ← u + η (log μ − logsumexp_j M)``, ``v ← v + η (log ν − logsumexp_i M)``, ``M = (c + u + v)/η``;
* after each ``v``-update, ``v`` is detached from the graph (``stop_gradient``) and entries ``> 9e8`` are zeroed,
  so gradients reach ``c`` through the ``u``-updates and the final kernel only;
* CPP uses uniform marginals ``μ = ν = 1/n`` and the caller multiplies by ``n``; here the marginals are
  ``1`` per row and ``n/m`` per column by default, which gives exactly ``n·π_CPP`` (the same iterates shifted by
  ``η log n``). With an odd ``n_iter`` (CPP default 5) the last update is a ``u``-update: rows sum exactly to the
  row marginal, columns only approximately. CPP's early stop (``err < 1e-12``) never fires; a fixed count is used.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

from eigenkit._validate import check_array, check_nonempty, check_positive, check_rank_arg

__all__ = ["SinkhornGrad", "sinkhorn_log"]


class SinkhornGrad(enum.Enum):
    """How gradients flow through :func:`sinkhorn_log`.

    * ``UNROLLED``: plain reverse-mode through every iteration (exact derivative of the ``n_iter``-step map).
    * ``STOP_V``: CPP/MLC semantics — ``v`` is ``stop_gradient``-ed after each ``v``-update (and entries
      ``> 9e8`` zeroed), so the gradient flows through the ``u``-updates and the final kernel only
      (``LeslieTrue/CPP`` ``model/sink_distance.py``).
    """

    UNROLLED = "unrolled"
    STOP_V = "stop_v"


def sinkhorn_log(
    logits,
    *,
    eta: float,
    n_iter: int,
    row_marginal=None,
    col_marginal=None,
    grad_mode: SinkhornGrad = SinkhornGrad.UNROLLED,
):
    """Entropic projection ``π = argmax_{π ∈ Π(μ, ν)} ⟨π, logits⟩ − η Σ π_ij log π_ij`` by log-domain Sinkhorn.

    Args:
      logits: ``(n, m)`` real similarity (larger = more mass); MLC passes ``CᵀC`` (paper) or ``|CᵀC|`` (CPP).
      eta: entropy weight ``η > 0`` (CPP ``--pieta``: 0.175 on CIFAR-10); smaller = sparser ``π``. A concrete
        ``eta <= 0`` raises; under ``jit`` a traced ``eta`` is not checked.
      n_iter: static number of half-iterations (each updates ``u`` or ``v``; CPP ``--piiter`` 5).
      row_marginal: ``(n,)`` positive row sums ``μ`` (default ones; concrete non-positive entries raise).
      col_marginal: ``(m,)`` positive column sums ``ν`` (default ``n/m``); ``Σμ = Σν`` is assumed, not checked.
      grad_mode: :class:`SinkhornGrad`.

    Returns:
      ``(n, m)`` nonnegative ``π``; for square logits with default marginals a doubly stochastic matrix
      (MLC's ``Γ``). Rows are exact after a final ``u``-update (odd ``n_iter``), columns after a final
      ``v``-update; both converge as ``n_iter`` grows. NaN in ``logits`` propagates to all of ``π``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.linalg import sinkhorn_log
      >>> g = sinkhorn_log(jax.random.normal(jax.random.key(0), (4, 4)), eta=0.5, n_iter=201)
      >>> bool(jnp.allclose(g.sum(0), 1.0, atol=1e-4) & jnp.allclose(g.sum(1), 1.0, atol=1e-5))
      True
    """
    logits = check_array(logits, "logits", ndim=2, kind="floating")
    check_nonempty(logits, "logits")
    check_positive(eta, "eta")
    n, m = logits.shape
    n_iter = check_rank_arg(n_iter, "n_iter", lower=0, upper=1 << 30, upper_name="2**30")
    if not isinstance(grad_mode, SinkhornGrad):
        raise TypeError(f"grad_mode must be a SinkhornGrad member, got {grad_mode!r}")
    dt = logits.dtype
    mu = jnp.ones((n,), dt) if row_marginal is None else check_array(row_marginal, "row_marginal", shape=(n,), ndim=1)
    nu = jnp.full((m,), n / m, dt) if col_marginal is None else check_array(col_marginal, "col_marginal", shape=(m,),
                                                                            ndim=1)
    check_positive(mu, "row_marginal")
    check_positive(nu, "col_marginal")
    log_mu, log_nu = jnp.log(mu.astype(dt)), jnp.log(nu.astype(dt))

    def kernel(u, v):
        return (logits + u[:, None] + v[None, :]) / eta

    def u_step(u, v):
        return u + eta * (log_mu - jax.nn.logsumexp(kernel(u, v), axis=1))

    def v_step(u, v):
        v = v + eta * (log_nu - jax.nn.logsumexp(kernel(u, v), axis=0))
        if grad_mode is SinkhornGrad.STOP_V:
            v = jax.lax.stop_gradient(v)
            v = jnp.where(v > 9e8, 0, v)
        return v

    def pair(_, uv):
        u, v = uv
        u = u_step(u, v)
        return u, v_step(u, v)

    u, v = jnp.zeros((n,), dt), jnp.zeros((m,), dt)
    u, v = jax.lax.fori_loop(0, n_iter // 2, pair, (u, v))
    if n_iter % 2:
        u = u_step(u, v)
    return jnp.exp(kernel(u, v))
