"""The fitted EigenShield state and the plain subspace projection the baselines use, with npz save / load.

Both are NamedTuples of arrays (pytrees): pass them through ``jit`` / ``vmap`` / ``grad`` like any argument. Column
``j`` of ``basis`` is used iff ``mask[j]``: the causal rank ``|𝒞|`` is data dependent, the array shapes are not
(fixed maximum rank ``max_rank``, set at :func:`~eigenkit.methods.eigenshield.fit` time).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

_FORMAT = "eigenkit.eigenshield/1"


class SubspaceProjection(NamedTuple):
    """``e ↦ μ + U diag(m) Uᵀ (e − μ)``: what :func:`~eigenkit.methods.eigenshield.transform` needs.

    Attributes:
      mean: ``(d,)`` centre ``μ``.
      basis: ``(d, r)`` orthonormal columns ``U`` (``r`` = the fixed maximum rank; ``r = d`` for :func:`no_defence`).
      mask: ``(r,)`` bool ``m``: which columns span the kept subspace.
    """

    mean: Float[Array, " d"]
    basis: Float[Array, "d r"]
    mask: Bool[Array, " r"]


class EigenShieldState(NamedTuple):
    """Fitted EigenShield defence (:func:`~eigenkit.methods.eigenshield.fit`), with the diagnostics of each step.

    Attributes:
      mean: ``(d,)`` calibration mean ``μ``.
      basis: ``(d, r)`` the ``r = max_rank`` leading eigenvectors ``u_1..u_r`` of the calibration covariance ``S``,
        columns, by decreasing eigenvalue.
      mask: ``(r,)`` bool: the causal set ``𝒞 = {i spike : RbNS_i <= τ}``.
      spike_mask: ``(r,)`` bool: the spikes ``𝒮`` (eigenvalues above the bulk-edge threshold), ``mask ⊆ spike_mask``.
      scores: ``(r,)`` robustness-based nonconformity score ``RbNS_i ∈ [0, 1]`` of every column (also of
        non-spike columns, for diagnostics; only spikes enter the quantile).
      eigvals: ``(d,)`` all eigenvalues of ``S``, descending (for the spectrum / Marchenko–Pastur figure).
      sigma2: ``()`` noise variance ``σ²`` used (estimated or given).
      bulk_edge: ``()`` asymptotic Marchenko–Pastur upper edge ``λ₊ = σ² (1 + √γ)²``, ``γ = d / (n − 1)``.
      spike_threshold: ``()`` eigenvalue threshold actually applied (``λ₊`` plus the Tracy–Widom margin).
      score_threshold: ``()`` conformal quantile ``τ`` of the spikes' scores (``+inf`` when there are too few).
      n_samples: ``()`` int32 number ``n`` of calibration embeddings.
    """

    mean: Float[Array, " d"]
    basis: Float[Array, "d r"]
    mask: Bool[Array, " r"]
    spike_mask: Bool[Array, " r"]
    scores: Float[Array, " r"]
    eigvals: Float[Array, " d"]
    sigma2: Float[Array, ""]
    bulk_edge: Float[Array, ""]
    spike_threshold: Float[Array, ""]
    score_threshold: Float[Array, ""]
    n_samples: Int[Array, ""]


_KINDS = {"EigenShieldState": EigenShieldState, "SubspaceProjection": SubspaceProjection}


def save(path: str | os.PathLike, state: EigenShieldState | SubspaceProjection) -> None:
    """Write a fitted state (or a baseline projection) to an ``.npz`` file (no pickle; dtypes kept).

    Args:
      path: file path (NumPy appends ``.npz`` if missing).
      state: :class:`EigenShieldState` or :class:`SubspaceProjection` (concrete arrays, not traced).

    Returns:
      None.

    Example:
      >>> import os, tempfile
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.methods import eigenshield
      >>> e = jax.random.normal(jax.random.key(0), (200, 8)).at[:, 0].multiply(5.0)
      >>> st = eigenshield.fit(e, 2, key=jax.random.key(1), n_bootstrap=4)
      >>> path = os.path.join(tempfile.mkdtemp(), "shield.npz")
      >>> eigenshield.save(path, st)
      >>> bool(jnp.all(eigenshield.load(path).basis == st.basis))
      True
    """
    kind = type(state).__name__
    if kind not in _KINDS:
        raise TypeError(f"state must be an EigenShieldState or SubspaceProjection, got {kind}")
    arrays = {f: np.asarray(v) for f, v in zip(state._fields, state)}
    np.savez(path, __format__=np.asarray(_FORMAT), __kind__=np.asarray(kind), **arrays)


def load(path: str | os.PathLike) -> EigenShieldState | SubspaceProjection:
    """Read a state written by :func:`save` (as ``jax.Array`` leaves, dtypes as saved).

    Args:
      path: the ``.npz`` file.

    Returns:
      the saved :class:`EigenShieldState` or :class:`SubspaceProjection`.

    Raises:
      ValueError: not a file written by :func:`save`, or fields missing.

    Example:
      >>> import os, tempfile
      >>> import jax.numpy as jnp
      >>> from eigenkit.methods import eigenshield
      >>> p = eigenshield.SubspaceProjection(jnp.zeros(3), jnp.eye(3)[:, :1], jnp.array([True]))
      >>> path = os.path.join(tempfile.mkdtemp(), "proj.npz")
      >>> eigenshield.save(path, p)
      >>> type(eigenshield.load(path)).__name__
      'SubspaceProjection'
    """
    with np.load(path, allow_pickle=False) as f:
        if "__format__" not in f.files or str(f["__format__"]) != _FORMAT:
            raise ValueError(f"path {os.fspath(path)!r} is not an EigenShield state file (format {_FORMAT})")
        kind = str(f["__kind__"])
        cls = _KINDS.get(kind)
        if cls is None:
            raise ValueError(f"path {os.fspath(path)!r} holds an unknown state kind {kind!r}")
        missing = [k for k in cls._fields if k not in f.files]
        if missing:
            raise ValueError(f"path {os.fspath(path)!r} lacks the fields {missing} of {kind}")
        return cls(*(jnp.asarray(f[k]) for k in cls._fields))
