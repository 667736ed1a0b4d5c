"""Graph spectral primitives on ``jraph.GraphsTuple`` batches: padded dense adjacency, Laplacians, batched spectra.

Pure functions, ``jit``/``vmap``-able with static sizes (``max_nodes``, ``k``: Python ints; variants: enums).

* Node bookkeeping: ``node_graph_index``, ``node_position``, ``to_padded`` / ``from_padded`` (flat nodes <->
  ``[G, max_nodes, ...]`` blocks), ``pad_graphs_to`` (``jraph.pad_with_graphs`` with clear errors) and
  ``real_graph_mask`` (which graphs are real in a padded batch).
* ``dense_adjacency``: per-graph zero-padded adjacency + node mask (multi-edges summed, self-loops dropped by
  default, directed input symmetrised).
* ``laplacian`` with ``LaplacianKind`` (``COMBINATORIAL``, ``SYM_NORM``, ``RANDOM_WALK``).
* ``laplacian_eigs`` / ``dense_laplacian_eigs``: k smallest eigenpairs per graph in one batched ``eigh``; padded
  pairs sort last and are zeroed and masked (``LaplacianSpectrum``). Eigenvector gradients are exact on simple
  spectra and NaN on repeated eigenvalues.
* ``neighbour_sum`` / ``neighbour_tables``: message passing on a flat row layout from padded neighbour tables,
  with a gather-only VJP (no scatter on CPU), for layouts where padded dense blocks waste work.
* ``laplacian_spectral_tensor`` / ``dense_laplacian_spectral_tensor``: ``V diag(φ(λ)) Vᵀ`` (SPE's tensor) with
  gradients w.r.t. edge weights that are exact on any spectrum.
"""

from eigenkit.graph._adjacency import dense_adjacency
from eigenkit.graph._batching import (
    from_padded,
    node_graph_index,
    node_position,
    pad_graphs_to,
    real_graph_mask,
    to_padded,
)
from eigenkit.graph._laplacian import LaplacianKind, laplacian
from eigenkit.graph._neighbours import neighbour_sum, neighbour_tables
from eigenkit.graph._spectrum import (
    LaplacianSpectrum,
    dense_laplacian_eigs,
    dense_laplacian_spectral_tensor,
    laplacian_eigs,
    laplacian_spectral_tensor,
)

__all__ = [
    "LaplacianKind",
    "LaplacianSpectrum",
    "dense_adjacency",
    "dense_laplacian_eigs",
    "dense_laplacian_spectral_tensor",
    "from_padded",
    "laplacian",
    "laplacian_eigs",
    "laplacian_spectral_tensor",
    "neighbour_sum",
    "neighbour_tables",
    "node_graph_index",
    "node_position",
    "pad_graphs_to",
    "real_graph_mask",
    "to_padded",
]
