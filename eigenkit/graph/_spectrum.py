"""Batched Laplacian spectra of padded graphs: k smallest eigenpairs per graph, padded pairs sorted last + masked."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Bool, Float

from eigenkit import linalg as _la
from eigenkit._validate import check_finite, check_rank_arg, check_square
from eigenkit.graph._adjacency import dense_adjacency
from eigenkit.graph._batching import _is_concrete
from eigenkit.graph._laplacian import (
    LaplacianKind,
    _check_kind,
    _check_mask,
    _diag_embed,
    _masked_adjacency,
    laplacian,
)

__all__ = [
    "LaplacianSpectrum",
    "dense_laplacian_eigs",
    "dense_laplacian_spectral_tensor",
    "laplacian_eigs",
    "laplacian_spectral_tensor",
]


class LaplacianSpectrum(NamedTuple):
    """k smallest Laplacian eigenpairs of each graph of a padded batch (a pytree; ``G`` may be any batch shape).

    Attributes:
      eigvals: ``[G, k]`` ascending eigenvalues; entries ``j >= n_g`` (no such eigenpair) are exactly 0.
      eigvecs: ``[G, max_nodes, k]``; column ``j`` is the eigenvector of ``eigvals[:, j]``; rows of padded nodes
        and columns ``j >= n_g`` are exactly 0. Orthonormal on the real nodes (``SYM_NORM``, ``COMBINATORIAL``).
      node_mask: ``bool[G, max_nodes]``, real nodes.
      eig_mask: ``bool[G, k]``, real eigenpairs (``j < n_g``).
    """

    eigvals: Float[Array, "G k"]
    eigvecs: Float[Array, "G max_nodes k"]
    node_mask: Bool[Array, "G max_nodes"]
    eig_mask: Bool[Array, "G k"]


def _check_symmetric(adj) -> None:
    """Eager check that a concrete ``adj`` is symmetric (eigh would silently use its lower triangle)."""
    if not _is_concrete(adj):
        return
    a = np.asarray(adj)
    if a.size == 0:
        return
    scale = float(np.max(np.abs(a))) if np.all(np.isfinite(a)) else 1.0
    atol = 10 * np.finfo(a.dtype).eps * max(scale, 1.0)
    if not np.allclose(a, np.swapaxes(a, -1, -2), rtol=0.0, atol=atol):
        raise ValueError(
            "adj must be symmetric (an undirected graph); got a non-symmetric matrix. For a directed graph use "
            "dense_adjacency(..., symmetrize=True), or symmetrise it yourself, e.g. jnp.maximum(adj, adj.mT)"
        )


def _check_dense(adj, mask, k, kind):
    adj = check_square(adj, "adj", kind="floating")
    mask = _check_mask(mask, adj)
    kind = _check_kind(kind)
    n = adj.shape[-1]
    k = n if k is None else check_rank_arg(k, "k", upper=n, upper_name="max_nodes")
    check_finite(adj, "adj")
    _check_symmetric(adj)
    _check_nonnegative(adj)
    return adj, mask, kind, k


def _check_nonnegative(adj) -> None:
    """Eager check: negative edge weights make the normalised Laplacians NaN (negative degrees) or indefinite."""
    if not _is_concrete(adj):
        return
    a = np.asarray(adj)
    if a.size and np.min(a) < 0:
        raise ValueError(f"adj must have non-negative edge weights, got a minimum of {float(np.min(a)):g}")


def _eig_mask(mask, k):
    n_real = jnp.sum(mask, axis=-1, dtype=jnp.int32)
    return jnp.arange(k, dtype=jnp.int32) < n_real[..., None]


def _padded_laplacian(adj, mask, kind, pad_value, isolated_value):
    """``L̃ = L + diag((1 − m) ∘ (c + j/n))``: real block first in ``eigh``'s ascending order, padded pairs last."""
    dt = adj.dtype
    n = adj.shape[-1]
    sym_kind = LaplacianKind.SYM_NORM if kind is LaplacianKind.RANDOM_WALK else kind
    lap = laplacian(adj, mask, sym_kind, isolated_value=isolated_value)
    m = mask.astype(dt)
    if pad_value is None:
        bound = jnp.max(jnp.sum(jnp.abs(lap), axis=-1), axis=-1, initial=0.0)
        pad = jax.lax.stop_gradient(bound + 1.0)[..., None]
    else:
        pad = jnp.asarray(pad_value, dt)
    # Padded diagonal c + j/n (j = node slot): distinct, so padded pairs never tie with each other (a tie would make
    # the eigenvector derivative NaN), all exceed the real spectrum, and all stay below c + 1 so that the relative
    # degeneracy threshold eps_rel · max|λ| is set by the real spectrum, not by the padding.
    return lap + _diag_embed((1.0 - m) * (pad + jnp.arange(n, dtype=dt) / n))


def dense_laplacian_eigs(
    adj: Float[Array, "... n n"],
    mask: Bool[Array, "... n"],
    k: int | None = None,
    kind: LaplacianKind = LaplacianKind.SYM_NORM,
    *,
    pad_value: float | None = None,
    isolated_value: float = 1.0,
) -> LaplacianSpectrum:
    """k smallest eigenpairs of the Laplacian of zero-padded dense graphs (batch-polymorphic, ``vmap``-able).

    With ``n_g = sum(mask)`` real nodes, ``L = laplacian(adj, mask, kind)`` has zero rows/columns for padded
    nodes. To sort the padded part last, the padded diagonal is set to values larger than every real
    eigenvalue, ``L̃ = L + diag((1 − m) ∘ (c + [0, 1, …, n−1]/n))``; ``L̃`` is block diagonal (real block ``L_real``
    ⊕ a diagonal of distinct values ``>= c``), so ``eigh(L̃)`` returns the ``n_g`` eigenpairs of ``L_real`` first,
    in ascending order, then the padded ones (distinct padded values keep eigenvector gradients finite when the
    real spectrum is simple). The pairs ``j >= n_g`` are then zeroed and masked, and padded rows of the
    eigenvectors are set to exactly 0. This is the SPE preprocessing (``zinc/trainer.py``: ``d = min(n, D)``
    smallest pairs, including the trivial ``λ = 0``, zero-padded to ``D``), done for a whole batch in one ``eigh``.

    * ``c`` (``pad_value=None``): per graph, the Gershgorin bound ``max_i Σ_j |L_ij| + 1`` (> ``λ_max``;
      ``<= 3`` for ``SYM_NORM``). A float ``pad_value`` must exceed every real eigenvalue (2 for ``SYM_NORM`` /
      ``RANDOM_WALK``); it is not checked, and a too-small value mixes padded and real pairs.
    * Degenerate spectra: eigenvectors inside a repeated eigenvalue are an arbitrary orthonormal basis of the
      eigenspace (only the projector onto it is defined; compare projectors, not vectors).
    * ``RANDOM_WALK``: eigenvalues are those of ``SYM_NORM``; eigenvectors are the right eigenvectors
      ``D^{-1/2} u`` of ``I − D^{-1} A`` (``D^{-1/2}_ii := 1`` for isolated nodes), rescaled to unit Euclidean
      norm — they are ``D``-orthogonal, not orthonormal.
    * Gradients w.r.t. ``adj`` (and hence edge weights): eigenvalue gradients are always finite and exact.
      Eigenvector gradients use :attr:`eigenkit.linalg.EighGrad.STRICT`: exact when the graph's real spectrum
      is simple, and **NaN in every entry of that graph's gradient** as soon as a real eigenvalue repeats
      (within ``sqrt(eps)·max|λ|``; e.g. cycles, complete graphs, hypercubes, two or more isolated nodes or
      components), even for a basis-invariant loss — eigenvectors of a repeated eigenvalue have no derivative,
      and NaN says so instead of a finite wrong number (before, such graphs gave finite gradients 15–24% off, or
      NaN, depending on rounding and batching). Other graphs of the batch are unaffected. For basis-invariant
      quantities ``V diag(φ(λ)) Vᵀ`` (SPE's tensor, projectors, heat kernels) use
      :func:`dense_laplacian_spectral_tensor` / :func:`laplacian_spectral_tensor`, whose gradients are exact on
      any spectrum.
    * NaN/Inf in ``adj``: a clear ``ValueError`` when called eagerly; under ``jit`` they propagate to the output.

    Args:
      adj: ``[..., n, n]`` symmetric non-negative adjacency (zero-padded); a concrete non-symmetric or
        non-finite ``adj`` raises.
      mask: ``bool[..., n]`` real-node mask (need not be a prefix, but ``dense_adjacency`` makes it one).
      k: static number of eigenpairs, ``1 <= k <= n`` (default ``n``).
      kind: a ``LaplacianKind``.
      pad_value: constant on the padded diagonal (see above); default automatic.
      isolated_value: ``L_ii`` for isolated nodes in the normalised kinds (1.0 = torch_geometric / SPE).

    Returns:
      ``LaplacianSpectrum`` with leading batch shape ``...``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.graph import LaplacianKind, dense_laplacian_eigs
      >>> adj = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> spec = dense_laplacian_eigs(adj, jnp.array([True, True, False]), 3, LaplacianKind.COMBINATORIAL)
      >>> spec.eigvals.round(6).tolist(), spec.eig_mask.tolist()
      ([0.0, 2.0, 0.0], [True, True, False])
    """
    adj, mask, kind, k = _check_dense(adj, mask, k, kind)
    dt = adj.dtype
    m = mask.astype(dt)
    lap_padded = _padded_laplacian(adj, mask, kind, pad_value, isolated_value)
    # STRICT: the exact eigenvector derivative where the real spectrum is simple, NaN (in every entry of that
    # graph's gradient) when a real eigenvalue repeats — never a finite, rounding-dependent wrong number.
    evals, evecs = _la.eigh(lap_padded, grad_rule=_la.EighGrad.STRICT)
    evals, evecs = evals[..., :k], evecs[..., :, :k]
    eig_mask = _eig_mask(mask, k)
    em = eig_mask.astype(dt)
    evals = evals * em
    evecs = evecs * m[..., :, None] * em[..., None, :]
    if kind is LaplacianKind.RANDOM_WALK:
        a, _ = _masked_adjacency(adj, mask)
        d = jnp.sum(a, axis=-1)
        zero = d == 0
        scale = jnp.where(zero, jnp.ones((), dt), jax.lax.rsqrt(jnp.where(zero, jnp.ones((), dt), d)))
        evecs = evecs * scale[..., :, None]
        norm = jnp.linalg.norm(evecs, axis=-2, keepdims=True)
        evecs = evecs / jnp.where(norm == 0, jnp.ones((), dt), norm)
    return LaplacianSpectrum(evals, evecs, mask, eig_mask)



def _checked_dense_adjacency(graphs, max_nodes, k, **kw):
    """``k`` checked against ``max_nodes``, then the padded dense adjacency of ``graphs`` (shared by the jraph entry
    points of the spectra and the spectral tensor)."""
    if k is not None:
        check_rank_arg(k, "k", upper=max_nodes, upper_name="max_nodes")
    return dense_adjacency(graphs, max_nodes, **kw)

def laplacian_eigs(
    graphs: jraph.GraphsTuple,
    max_nodes: int,
    k: int | None = None,
    kind: LaplacianKind = LaplacianKind.SYM_NORM,
    *,
    pad_value: float | None = None,
    edge_weight=None,
    symmetrize: bool = True,
    keep_self_loops: bool = False,
    isolated_value: float = 1.0,
    graph_mask=None,
    dtype=None,
) -> LaplacianSpectrum:
    """k smallest Laplacian eigenpairs of every graph of a ``jraph.GraphsTuple`` batch, padded to ``max_nodes``.

    ``dense_adjacency`` (multi-edges summed, self-loops dropped unless ``keep_self_loops``, directed edges
    symmetrised with the elementwise max) followed by ``dense_laplacian_eigs`` (padded pairs sort last, are
    zeroed and masked). Empty graphs (``n_node = 0``) give all-zero, all-masked outputs; isolated nodes, single
    nodes and disconnected graphs are handled (see ``laplacian`` for the isolated-node convention: with the
    default ``isolated_value=1`` an isolated node adds eigenvalue 1 to ``SYM_NORM``; the multiplicity of 0
    is the number of components with at least one edge, plus the isolated nodes for ``COMBINATORIAL`` or
    ``isolated_value=0``).

    With the defaults (``SYM_NORM``, ``keep_self_loops=False``, ``isolated_value=1``) and an edge list holding both
    directions of every edge, the Laplacian is exactly the SPE official preprocessing's
    ``to_dense_adj(*get_laplacian(edge_index, normalization="sym"))`` (torch_geometric removes self-loops, sums
    duplicate edges, puts 1 on every diagonal entry, so isolated nodes get ``L_ii = 1``), and ``k = D`` gives its
    ``Lambda`` / ``V`` (``d = min(n, D)`` pairs, zero-padded).

    To map per-graph eigenvectors back to flat nodes (``[N_total, k]``, e.g. as node features), use
    ``from_padded(spec.eigvecs, graphs)``.

    Args:
      graphs: batch (``n_node [G]``, ``senders``/``receivers [E]``, ``nodes`` with ``N_total`` rows).
      max_nodes: static per-graph size, ``>= max(n_node)`` over unmasked graphs (eager check; under ``jit``
        larger graphs are truncated to their first ``max_nodes`` nodes).
      k: static number of eigenpairs, ``1 <= k <= max_nodes`` (default ``max_nodes``). SPE's ``D``.
      kind: a ``LaplacianKind`` (default ``SYM_NORM``, as SPE).
      pad_value, isolated_value: see ``dense_laplacian_eigs``.
      edge_weight, symmetrize, keep_self_loops, graph_mask, dtype: see ``dense_adjacency``
        (``dtype`` default float32).

    Returns:
      ``LaplacianSpectrum(eigvals [G, k], eigvecs [G, max_nodes, k], node_mask [G, max_nodes], eig_mask [G, k])``.

    Example:
      >>> import jraph, jax.numpy as jnp
      >>> from eigenkit.graph import laplacian_eigs
      >>> ring = jraph.GraphsTuple(nodes=jnp.zeros((4, 1)), edges=None, senders=jnp.array([0, 1, 2, 3]),
      ...     receivers=jnp.array([1, 2, 3, 0]), n_node=jnp.array([4]), n_edge=jnp.array([4]), globals=None)
      >>> spec = laplacian_eigs(ring, max_nodes=6, k=5)
      >>> spec.eigvals.round(5).tolist(), spec.eig_mask.tolist()
      ([[0.0, 1.0, 1.0, 2.0, 0.0]], [[True, True, True, True, False]])
    """
    adj, mask = _checked_dense_adjacency(graphs, max_nodes, k, edge_weight=edge_weight, symmetrize=symmetrize,
                                         keep_self_loops=keep_self_loops, graph_mask=graph_mask, dtype=dtype)
    return dense_laplacian_eigs(adj, mask, k, kind, pad_value=pad_value, isolated_value=isolated_value)


def _wrap_phi(phi, k, eig_mask):
    """φ on the ``k`` smallest (masked) eigenvalues → values for all ``n`` eigenvalues of ``L̃`` (zeros beyond)."""
    def full(lam):
        em = eig_mask.astype(lam.dtype)
        z = phi(lam[..., :k] * em, eig_mask)
        z = jnp.asarray(z)
        if z.ndim not in (lam.ndim, lam.ndim + 1) or z.shape[lam.ndim - 1] != k:
            raise ValueError(f"phi(eigvals, eig_mask) must return shape (..., k) or (..., k, m) with k = {k}, "
                             f"got {tuple(z.shape)}")
        z = z * (em if z.ndim == lam.ndim else em[..., None])
        pad = [(0, 0)] * z.ndim
        pad[lam.ndim - 1] = (0, lam.shape[-1] - k)
        return jnp.pad(z, pad)

    return full


def dense_laplacian_spectral_tensor(
    adj: Float[Array, "... n n"],
    mask: Bool[Array, "... n"],
    phi,
    k: int | None = None,
    kind: LaplacianKind = LaplacianKind.SYM_NORM,
    *,
    derivative=None,
    pad_value: float | None = None,
    isolated_value: float = 1.0,
) -> Float[Array, "... n n m"]:
    """``W[..., :, :, ℓ] = Σ_{j < min(n_g, k)} φ_ℓ(λ_j) v_j v_jᵀ`` of padded dense graphs, with exact gradients.

    The basis-invariant tensor of SPE (Huang et al. 2024, eq. 2) built from the same ``k`` smallest Laplacian
    eigenpairs as :func:`dense_laplacian_eigs` (``W = V diag(φ(λ)) Vᵀ`` with ``spec.eigvecs`` / ``spec.eigvals``),
    but differentiated by divided differences (:func:`eigenkit.linalg.spectral_tensor`), so gradients w.r.t.
    ``adj`` / edge weights are exact on **any** spectrum — cycles, complete graphs, hypercubes, rings in
    molecules — where eigenvector gradients are NaN. Requires a gap between eigenpairs ``k − 1`` and ``k`` when
    ``k < n_g`` (otherwise ``W`` itself is not differentiable).

    Args:
      adj: ``[..., n, n]`` symmetric non-negative adjacency (zero-padded).
      mask: ``bool[..., n]`` real-node mask.
      phi: callable ``phi(eigvals [..., k], eig_mask bool[..., k]) -> [..., k]`` or ``[..., k, m]``, permutation
        equivariant over the eigenvalue axis (elementwise functions and MLPs, also with batch statistics); it sees
        eigenvalues with entries ``j >= n_g`` set to 0, and its outputs there are zeroed.
      k: static number of eigenpairs (default ``n``).
      kind: ``SYM_NORM`` or ``COMBINATORIAL`` (``RANDOM_WALK`` eigenvectors are not orthonormal: not supported).
      derivative: optional side-effect-free copy of ``phi`` (same signature) used for the within-eigenspace
        derivative, e.g. when ``phi`` updates BatchNorm statistics.
      pad_value, isolated_value: see :func:`dense_laplacian_eigs`.

    Returns:
      ``[..., n, n, m]`` (or ``[..., n, n]`` when φ returns ``[..., k]``); rows/columns of padded nodes are 0.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.graph import dense_laplacian_spectral_tensor
      >>> ring = jnp.roll(jnp.eye(6), 1, axis=1) + jnp.roll(jnp.eye(6), -1, axis=1)  # C6: repeated eigenvalues
      >>> f = lambda w: jnp.sum(dense_laplacian_spectral_tensor(w * ring, jnp.ones(6, bool),
      ...                                                     lambda lam, m: jnp.exp(-lam)) ** 2)
      >>> g = jax.grad(f)(jnp.ones((6, 6)))
      >>> bool(jnp.all(jnp.isfinite(g)))
      True
    """
    adj, mask, kind, k = _check_dense(adj, mask, k, kind)
    if kind is LaplacianKind.RANDOM_WALK:
        raise ValueError("dense_laplacian_spectral_tensor needs a symmetric Laplacian (SYM_NORM or COMBINATORIAL); "
                         "RANDOM_WALK eigenvectors are not orthonormal")
    if not callable(phi):
        raise TypeError(f"phi must be a callable phi(eigvals, eig_mask), got {type(phi).__name__}")
    if derivative is not None and not callable(derivative):
        raise TypeError(f"derivative must be a callable like phi, got {type(derivative).__name__}")
    lap_padded = _padded_laplacian(adj, mask, kind, pad_value, isolated_value)
    eig_mask = _eig_mask(mask, k)
    full_phi = _wrap_phi(phi, k, eig_mask)
    full_derivative = None if derivative is None else _wrap_phi(derivative, k, eig_mask)
    return _la.spectral_tensor(lap_padded, full_phi, derivative=full_derivative)


def laplacian_spectral_tensor(
    graphs: jraph.GraphsTuple,
    max_nodes: int,
    phi,
    k: int | None = None,
    kind: LaplacianKind = LaplacianKind.SYM_NORM,
    *,
    derivative=None,
    pad_value: float | None = None,
    edge_weight=None,
    symmetrize: bool = True,
    keep_self_loops: bool = False,
    isolated_value: float = 1.0,
    graph_mask=None,
    dtype=None,
) -> Float[Array, "G max_nodes max_nodes m"]:
    """:func:`dense_laplacian_spectral_tensor` of every graph of a ``jraph.GraphsTuple`` batch (see
    :func:`laplacian_eigs` for the adjacency options). Differentiate w.r.t. ``edge_weight`` through this rather
    than through ``laplacian_eigs(...).eigvecs`` (NaN on repeated eigenvalues).

    Args:
      graphs, max_nodes, k, kind, pad_value, edge_weight, symmetrize, keep_self_loops, isolated_value, graph_mask,
        dtype: as :func:`laplacian_eigs`.
      phi, derivative: as :func:`dense_laplacian_spectral_tensor`.

    Returns:
      ``[G, max_nodes, max_nodes, m]`` (or ``[G, max_nodes, max_nodes]``).

    Example:
      >>> import jraph, jax, jax.numpy as jnp
      >>> from eigenkit.graph import laplacian_spectral_tensor
      >>> ring = jraph.GraphsTuple(nodes=jnp.zeros((4, 1)), edges=None, senders=jnp.array([0, 1, 2, 3]),
      ...     receivers=jnp.array([1, 2, 3, 0]), n_node=jnp.array([4]), n_edge=jnp.array([4]), globals=None)
      >>> w = laplacian_spectral_tensor(ring, 5, lambda lam, m: jnp.ones_like(lam))  # φ = 1: projector V Vᵀ
      >>> w.shape, jnp.round(jnp.trace(w[0]), 4).item()
      ((1, 5, 5), 4.0)
    """
    adj, mask = _checked_dense_adjacency(graphs, max_nodes, k, edge_weight=edge_weight, symmetrize=symmetrize,
                                         keep_self_loops=keep_self_loops, graph_mask=graph_mask, dtype=dtype)
    return dense_laplacian_spectral_tensor(adj, mask, phi, k, kind, derivative=derivative, pad_value=pad_value,
                                           isolated_value=isolated_value)
