"""Streaming accumulation of the input covariance ``S = Σ xᵀx`` of a linear layer (EoRA §3, "eigenspace").

Two weighting rules (a static :class:`CovarianceWeighting`):

* ``MEAN`` (default): every token weighs the same, ``S = (1/n_tokens) Σ_t x_t x_tᵀ``. Chunked and one-shot
  accumulation agree exactly up to round-off, and per-device partial states merge by summing ``(total, count)``.
* ``OFFICIAL_DECAY``: the rule of NVlabs/EoRA ``llama_sequential_eigen`` (``eora.py``): for each call with ``b``
  sequences, ``S ← S · N/(N+b) + Σ_{sequences, tokens} x xᵀ / N`` with the *fixed* ``N = num_samples``
  (``--eigen_nsamples``). Tokens are summed, not averaged, and older sequences are down-weighted: with ``N = 64``
  and ``b = 1`` the first sequence weighs 0.377 of the last. A global scale on ``S`` leaves ``B A`` unchanged, so the
  two rules differ only through the relative weights of the sequences.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from eigenkit._validate import check_array


class CovarianceWeighting(enum.Enum):
    """How successive calibration batches are weighted (see module docstring)."""

    MEAN = "mean"
    OFFICIAL_DECAY = "official_decay"


class CovarianceState(NamedTuple):
    """Running covariance.

    Attributes:
      total: ``(d, d)`` accumulated (weighted) ``Σ x xᵀ``, dtype of the inputs.
      count: ``()`` number of tokens seen (``MEAN``) or of sequences seen (``OFFICIAL_DECAY``), same dtype.
    """

    total: Float[Array, "d d"]
    count: Float[Array, ""]


def covariance_init(dim: int, dtype=jnp.float32) -> CovarianceState:
    """An empty :class:`CovarianceState` for inputs of width ``dim``.

    Example:
      >>> s = covariance_init(3)
      >>> s.total.shape
      (3, 3)
    """
    return CovarianceState(jnp.zeros((dim, dim), dtype), jnp.zeros((), dtype))


def covariance_update(
    state: CovarianceState,
    x: Float[Array, "b l d"] | Float[Array, "l d"],
    *,
    weighting: CovarianceWeighting = CovarianceWeighting.MEAN,
    num_samples: int | None = None,
) -> CovarianceState:
    """Add a batch of layer inputs to the running covariance.

    Args:
      state: the running state (from :func:`covariance_init`).
      x: inputs ``(b, l, d)`` (``b`` sequences of ``l`` tokens) or ``(l, d)`` (one sequence).
      weighting: :class:`CovarianceWeighting`.
      num_samples: ``N`` of the ``OFFICIAL_DECAY`` rule (required there, ignored otherwise).

    Returns:
      The updated state.

    Example:
      >>> x = jnp.ones((2, 5, 3))
      >>> s = covariance_update(covariance_init(3), x)
      >>> float(covariance_finalize(s)[0, 0])
      1.0
    """
    x = check_array(x, "x", ndim=(2, 3), kind="floating")
    if x.ndim == 2:
        x = x[None]
    d = state.total.shape[-1]
    if x.shape[-1] != d:
        raise ValueError(f"x must have shape (b, l, {d}) to match the state, got {x.shape}")
    if x.dtype != state.total.dtype:
        raise TypeError(f"x dtype {x.dtype} must match the state dtype {state.total.dtype}")
    flat = x.reshape(-1, d)
    gram = flat.T @ flat
    if weighting is CovarianceWeighting.MEAN:
        return CovarianceState(state.total + gram, state.count + flat.shape[0])
    if weighting is CovarianceWeighting.OFFICIAL_DECAY:
        if num_samples is None or num_samples < 1:
            raise ValueError("OFFICIAL_DECAY weighting needs num_samples >= 1 (the official --eigen_nsamples)")
        b = x.shape[0]
        total = state.total * (num_samples / (num_samples + b)) + gram / num_samples
        return CovarianceState(total, state.count + b)
    raise TypeError(f"weighting must be a CovarianceWeighting, got {weighting!r}")


def covariance_finalize(
    state: CovarianceState, *, weighting: CovarianceWeighting = CovarianceWeighting.MEAN
) -> Float[Array, "d d"]:
    """The covariance matrix ``S``: ``total / count`` for ``MEAN``; ``total`` as is for ``OFFICIAL_DECAY``.

    An empty ``MEAN`` state gives the zero matrix.
    """
    if weighting is CovarianceWeighting.MEAN:
        return state.total / jnp.maximum(state.count, 1)
    return state.total


def covariance_merge(a: CovarianceState, b: CovarianceState) -> CovarianceState:
    """Merge two ``MEAN`` states accumulated on disjoint data (e.g. per device): sum of totals and counts."""
    return CovarianceState(a.total + b.total, a.count + b.count)


def input_covariance(x: Float[Array, "n d"]) -> Float[Array, "d d"]:
    """One-shot ``MEAN`` covariance ``Xᵀ X / n`` of token rows ``x``."""
    x = check_array(x, "x", ndim=2, kind="floating")
    return (x.T @ x) / jnp.asarray(max(x.shape[0], 1), x.dtype)


__all__ = [
    "CovarianceState",
    "CovarianceWeighting",
    "covariance_finalize",
    "covariance_init",
    "covariance_merge",
    "covariance_update",
    "input_covariance",
]

