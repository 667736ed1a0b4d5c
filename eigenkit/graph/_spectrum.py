"""Batched Laplacian spectra of padded graphs: k smallest eigenpairs per graph, padded pairs sorted last + masked."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np
from jaxtyping import Array, Bool, Float

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

__all__ = ["LaplacianSpectrum", "dense_laplacian_eigs", "laplacian_eigs"]


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
    eigenvalue, ``L̃ = L + diag((1 − m) ∘ (c + [0, 1, …, n−1]))``; ``L̃`` is block diagonal (real block ``L_real``
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
    * Gradients (w.r.t. ``adj``) come from ``jnp.linalg.eigh``: eigenvalue gradients are always finite;
      eigenvector gradients are finite when the real spectrum is simple but inf/NaN (in *all* entries, jax#4646)
      as soon as a real eigenvalue repeats (e.g. cycles, complete graphs, hypercubes, two or more isolated
      nodes or components). Use the values for preprocessing (as SPE does: no gradient flows into λ, V), or
      ``eigenkit.linalg``'s safe-gradient ``eigh`` / projectors for differentiable spectra.
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
      >>> adj = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> spec = dense_laplacian_eigs(adj, jnp.array([True, True, False]), 3, LaplacianKind.COMBINATORIAL)
      >>> spec.eigvals.round(6).tolist(), spec.eig_mask.tolist()
      ([0.0, 2.0, 0.0], [True, True, False])
    """
    adj = check_square(adj, "adj", kind="floating")
    mask = _check_mask(mask, adj)
    kind = _check_kind(kind)
    n = adj.shape[-1]
    k = n if k is None else check_rank_arg(k, "k", upper=n, upper_name="max_nodes")
    check_finite(adj, "adj")
    _check_symmetric(adj)
    dt = adj.dtype
    sym_kind = LaplacianKind.SYM_NORM if kind is LaplacianKind.RANDOM_WALK else kind
    lap = laplacian(adj, mask, sym_kind, isolated_value=isolated_value)
    m = mask.astype(dt)
    if pad_value is None:
        bound = jnp.max(jnp.sum(jnp.abs(lap), axis=-1), axis=-1, initial=0.0)
        pad = jax.lax.stop_gradient(bound + 1.0)[..., None]
    else:
        pad = jnp.asarray(pad_value, dt)
    # Padded diagonal c + j (j = node slot): distinct, so padded pairs never tie with each other (a tie would make
    # eigh's eigenvector derivative inf/NaN everywhere, jax#4646) and all exceed the real spectrum.
    lap_padded = lap + _diag_embed((1.0 - m) * (pad + jnp.arange(n, dtype=dt)))
    evals, evecs = jnp.linalg.eigh(lap_padded)
    evals, evecs = evals[..., :k], evecs[..., :, :k]
    n_real = jnp.sum(mask, axis=-1, dtype=jnp.int32)
    eig_mask = jnp.arange(k, dtype=jnp.int32) < n_real[..., None]
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
      >>> ring = jraph.GraphsTuple(nodes=jnp.zeros((4, 1)), edges=None, senders=jnp.array([0, 1, 2, 3]),
      ...     receivers=jnp.array([1, 2, 3, 0]), n_node=jnp.array([4]), n_edge=jnp.array([4]), globals=None)
      >>> spec = laplacian_eigs(ring, max_nodes=6, k=5)
      >>> spec.eigvals.round(5).tolist(), spec.eig_mask.tolist()
      ([[0.0, 1.0, 1.0, 2.0, 0.0]], [[True, True, True, True, False]])
    """
    if k is not None:
        check_rank_arg(k, "k", upper=max_nodes, upper_name="max_nodes")
    adj, mask = dense_adjacency(
        graphs,
        max_nodes,
        edge_weight=edge_weight,
        symmetrize=symmetrize,
        keep_self_loops=keep_self_loops,
        graph_mask=graph_mask,
        dtype=dtype,
    )
    return dense_laplacian_eigs(adj, mask, k, kind, pad_value=pad_value, isolated_value=isolated_value)
