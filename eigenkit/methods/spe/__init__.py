"""SPE — Stable and Expressive Positional Encodings (Huang, Lu, Robinson, Yang, Zhang, Jegelka, Li; ICLR 2024).

``SPE(V, λ) = ρ(V diag(φ_1(λ)) Vᵀ, …, V diag(φ_m(λ)) Vᵀ)`` with elementwise eigenvalue networks φ_ℓ and a GIN ρ
over the node axis; stable (Lipschitz in the Laplacian, constant ∝ 1/eigengap) and basis invariant. Paper names are
used throughout (official Graph-COM/SPE swaps φ and ρ).

* Pure: :func:`basis_invariant_tensor`, :func:`random_sign_flip`.
* Data: :class:`GraphBatch`, :func:`make_graph_batch`, :func:`take_graph_batch`, :func:`unbatch_graph_batch`,
  :func:`dense_adjacency_of_batch`; :class:`PairIndex`, :func:`pair_index`, :func:`with_pair_index`,
  :func:`pair_budgets` (ρ on the real node pairs only: ``Σ n_b²`` rows instead of ``B N²``).
* Modules: :class:`EigenvalueNets` (φ), :class:`SPE`, :class:`SignNet`, :class:`PEGraphRegressor`
  (GINE + none / LapPE / SPE / SignNet).
* Official weights: :func:`load_official_state_dict` (a Graph-COM/SPE PyTorch ``state_dict`` as NumPy arrays →
  :class:`SPE` or the whole ZINC ``Model`` → :class:`PEGraphRegressor`).

Differentiating the PE w.r.t. the graph (edge weights): use :meth:`SPE.from_adjacency` /
:meth:`SPE.spectral_tensor_from_adjacency`, which build ``W`` with ``eigenkit.graph.dense_laplacian_spectral_tensor``
(divided differences: exact on symmetric graphs with repeated eigenvalues, e.g. rings). Gradients through
precomputed ``eigvecs`` are NaN on repeated eigenvalues.
"""

from eigenkit.methods.spe._batch import (
    GraphBatch,
    dense_adjacency_of_batch,
    make_graph_batch,
    take_graph_batch,
    unbatch_graph_batch,
    with_pair_index,
)
from eigenkit.methods.spe._model import (
    SPE,
    BatchNormMode,
    EigenvalueNetKind,
    EigenvalueNets,
    PEGraphRegressor,
    PEKind,
    SignNet,
)
from eigenkit.methods.spe._official_weights import load_official_state_dict
from eigenkit.methods.spe._pairs import PairIndex, pair_budgets, pair_index
from eigenkit.methods.spe._tensor import basis_invariant_tensor, random_sign_flip

__all__ = [
    "SPE",
    "BatchNormMode",
    "EigenvalueNetKind",
    "EigenvalueNets",
    "GraphBatch",
    "PEGraphRegressor",
    "PEKind",
    "PairIndex",
    "SignNet",
    "basis_invariant_tensor",
    "dense_adjacency_of_batch",
    "load_official_state_dict",
    "make_graph_batch",
    "pair_budgets",
    "pair_index",
    "random_sign_flip",
    "take_graph_batch",
    "unbatch_graph_batch",
    "with_pair_index",
]
