"""SPE (Huang et al., ICLR 2024) as Flax NNX modules, and a GINE graph regressor with none / LapPE / SPE encodings.

Naming follows the **paper** (the official code swaps them): φ_ℓ are the eigenvalue networks (code: ``psi``), ρ is
the permutation-equivariant network on ``W`` (code: ``phi``, ``GINPhi``). Config-key map from
``configs/zinc/SPE_gine_gin_mlp_pe37.yaml``: ``n_psis → n_phi``, ``n_psi_layers → phi_layers``,
``psi_hidden_dims → phi_hidden``, ``n_phi_layers → rho_layers``, ``phi_hidden_dims → rho_hidden``,
``pe_dims → pe_dims``.

    SPE(V, λ) = ρ( V diag(φ_1(λ)) Vᵀ, …, V diag(φ_m(λ)) Vᵀ )                          (paper eq. 2)

ρ = a GIN over the node axis of ``W[v, j, ℓ]`` batched over the column axis ``j``, then a masked sum over ``j``.

BatchNorm (:class:`BatchNormMode`): ``MASKED`` (default) excludes every padded entry from the statistics (padded
eigenvalues in φ, padded rows *and* columns of ``W`` in ρ, padding nodes in the GINE), so a graph's train-mode output
does not depend on how much padding its batch has. ``OFFICIAL`` reproduces the statistics of the PyTorch code:
φ's BN sees all ``B × D`` eigenvalue slots (padded ones included; ``D`` = the eigen axis width, so build batches
with ``make_graph_batch(..., k=D)`` for the official PE width ``D``, also when ``D > max_nodes``), ρ's BN sees the
``N_sum`` real rows with all columns up to the padding width (equal to the official ``N_max`` when a batch is padded
exactly to its largest graph). Eval mode (running statistics) is identical in both.

Official PyTorch weights (a ``state_dict`` as NumPy arrays) load with :func:`load_official_state_dict`.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
from flax import nnx

from eigenkit import graph as eg
from eigenkit.methods.spe._batch import GraphBatch, dense_adjacency_of_batch
from eigenkit.methods.spe._pairs import PairIndex
from eigenkit.methods.spe._tensor import basis_invariant_tensor, random_sign_flip
from eigenkit.nn import MLP, DenseGINLayer, GINEGraphRegressor, MaskedBatchNorm, Pooling, remat_sequential

__all__ = ["BatchNormMode", "EigenvalueNetKind", "PEKind", "EigenvalueNets", "SPE", "SignNet", "PEGraphRegressor"]


class BatchNormMode(enum.Enum):
    """Which entries enter the BatchNorm statistics (see module docstring)."""

    MASKED = "masked"
    OFFICIAL = "official"


class EigenvalueNetKind(enum.Enum):
    """φ_ℓ variants. ``MLP``: elementwise MLP 1 → h → … → 1 on each eigenvalue (the ZINC PE-full default);
    ``ONES``: φ_ℓ ≡ 1, so ``W_ℓ = V Vᵀ`` (official ``ZeroPsi``)."""

    MLP = "mlp"
    ONES = "ones"


class PEKind(enum.Enum):
    """Positional encoding fed to the GINE backbone."""

    NONE = "none"
    LAPPE = "lappe"
    SPE = "spe"
    SIGNNET = "signnet"


def _uniform(key, shape, fan_in, dtype):
    bound = 1.0 / jnp.sqrt(jnp.asarray(fan_in, dtype))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


class EigenvalueNets(nnx.Module):
    """m independent eigenvalue networks φ_ℓ applied elementwise: ``λ[B, d] → Z[B, d, m]``, ``Z[b,i,ℓ] = φ_ℓ(λ[b,i])``.

    Elementwise application makes each φ_ℓ permutation equivariant over the eigenvalues and gives equal outputs to
    equal eigenvalues (hence basis invariance of ``W``). Each φ_ℓ is the official MLP: ``n_layers − 1`` ×
    [Linear → BatchNorm → ReLU] then Linear → 1, stored stacked over ℓ (one einsum per layer).
    Parameters: ``w{i}: [m, in, out]`` (= torch ``psi_list[ℓ].layers[i].fc.weight.T``), ``b{i}: [m, out]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> nets = EigenvalueNets(4, 3, 16, rngs=nnx.Rngs(0))
      >>> nets(jnp.zeros((2, 5)), jnp.ones((2, 5), bool)).shape
      (2, 5, 4)
    """

    def __init__(self, n_nets: int, n_layers: int = 3, hidden: int = 16, *, kind: EigenvalueNetKind =
                 EigenvalueNetKind.MLP, use_bn: bool = True, param_dtype=jnp.float32, rngs: nnx.Rngs):
        self.n_nets, self.kind, self.use_bn = n_nets, kind, use_bn
        widths = [1] + [hidden] * (n_layers - 1) + [1]
        ws, bs, norms = [], [], []
        for a, b in zip(widths[:-1], widths[1:]):
            ws.append(nnx.Param(_uniform(rngs.params(), (n_nets, a, b), a, param_dtype)))
            bs.append(nnx.Param(_uniform(rngs.params(), (n_nets, b), a, param_dtype)))
        for _ in widths[1:-1]:
            if use_bn:
                norms.append(MaskedBatchNorm(n_nets * hidden, param_dtype=param_dtype))
        self.ws, self.bs, self.norms = nnx.List(ws), nnx.List(bs), nnx.List(norms)

    def __call__(self, eigvals: jax.Array, bn_mask: jax.Array | None) -> jax.Array:
        """``eigvals[B, d]`` → ``[B, d, m]``; ``bn_mask[B, d]`` = entries in the BN statistics (None: all)."""
        if self.kind is EigenvalueNetKind.ONES:
            return jnp.ones(eigvals.shape + (self.n_nets,), eigvals.dtype)
        x = jnp.broadcast_to(eigvals[..., None, None], eigvals.shape + (self.n_nets, 1))
        last = len(self.ws) - 1
        for i in range(len(self.ws)):
            x = jnp.einsum("bdmi,mio->bdmo", x, self.ws[i][...].astype(x.dtype)) + self.bs[i][...].astype(x.dtype)
            if i < last:
                if self.use_bn:
                    shp = x.shape
                    x = self.norms[i](x.reshape(shp[:2] + (-1,)), mask=bn_mask).reshape(shp)
                x = jax.nn.relu(x)
        return x[..., 0]


class SPE(nnx.Module):
    """Stable and Expressive Positional Encoding: ``(λ, V, A) → PE[B, N, pe_dims]`` (Huang et al. 2024, eq. 2).

    1. ``Z = φ(λ)`` (:class:`EigenvalueNets`), ``[B, d, m]``;
    2. ``W = V diag(Z_ℓ) Vᵀ`` (:func:`basis_invariant_tensor`), ``[B, N, N, m]``;
    3. ρ: ``rho_layers`` dense GIN layers over the node axis ``v`` of ``W[b, v, j, :]`` (``j`` a batch axis;
       official ``GIN``: ``rho_layers − 1`` layers m → hidden, then hidden → pe_dims; each layer's MLP has
       ``n_mlp_layers`` Linear layers of width ``rho_hidden`` with BatchNorm), then
       ``PE[b, v] = Σ_{j real} H[b, v, j]``.

    Padded nodes get PE 0. Full spectra: ``d = N``; truncated: ``d < N`` smallest pairs; ``d > N``: the eigen axis
    padded to a PE width beyond the node budget (official ``D``; the extra slots are masked, so ``W`` and the
    masked / eval-mode PE are unchanged). Cost: ``O(B N² m)`` memory.
    Degenerate inputs: graphs with no edges are fine (ρ's aggregation is empty; isolated nodes have λ = 1 under the
    official convention); NaN/Inf in ``eigvals`` / ``eigvecs`` / ``adj`` propagate to the PE (values are not checked
    under ``jit``; :func:`make_graph_batch` rejects NaN node features eagerly and too-large graphs with a clear error).

    Args:
      n_phi: m, number of eigenvalue networks (official ``n_psis``, ZINC 16).
      pe_dims: output width (ZINC 37).
      phi_layers, phi_hidden: φ MLP depth / width (3, 16).
      rho_layers, rho_hidden: ρ GIN depth / width (8, 128).
      n_mlp_layers: Linear layers per GIN MLP (3).
      phi_kind: :class:`EigenvalueNetKind`.
      bn_mode: :class:`BatchNormMode`.
      use_bn: BatchNorm inside the MLPs (official ``mlp_use_bn``).
      remat: rematerialise each ρ layer in the backward pass (:func:`eigenkit.nn.remat_sequential`: a ``lax.scan``
        over the stacked layers of equal shape with a checkpointed body): only the layer inputs are stored, for
        one extra forward pass of ρ. Same values, statistics and gradients.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> spe = SPE(n_phi=2, pe_dims=3, rho_layers=2, rho_hidden=8, rngs=nnx.Rngs(0))
      >>> lam, V = jnp.linalg.eigh(jnp.array([[1.0, -1.0], [-1.0, 1.0]]))
      >>> spe(lam[None], V[None], jnp.ones((1, 2), bool), jnp.ones((1, 2), bool),
      ...     jnp.array([[[0.0, 1.0], [1.0, 0.0]]])).shape
      (1, 2, 3)
    """

    def __init__(self, n_phi: int = 16, pe_dims: int = 37, *, phi_layers: int = 3, phi_hidden: int = 16,
                 rho_layers: int = 8, rho_hidden: int = 128, n_mlp_layers: int = 3,
                 phi_kind: EigenvalueNetKind = EigenvalueNetKind.MLP, bn_mode: BatchNormMode = BatchNormMode.MASKED,
                 use_bn: bool = True, remat: bool = False, param_dtype=jnp.float32, rngs: nnx.Rngs):
        if rho_layers < 1:
            raise ValueError(f"rho_layers must be >= 1, got {rho_layers}")
        self.bn_mode, self.pe_dims, self.remat = bn_mode, pe_dims, remat
        self.phi = EigenvalueNets(n_phi, phi_layers, phi_hidden, kind=phi_kind, use_bn=use_bn,
                                  param_dtype=param_dtype, rngs=rngs)
        widths = [n_phi] + [rho_hidden] * (rho_layers - 1) + [pe_dims]
        self.rho = nnx.List([
            DenseGINLayer(widths[i], widths[i + 1], hidden_features=rho_hidden, n_mlp_layers=n_mlp_layers,
                          use_bn=use_bn, param_dtype=param_dtype, rngs=rngs)
            for i in range(rho_layers)
        ])

    def spectral_tensor(self, eigvals, eigvecs, eig_mask):
        """``W[B, N, N, m]`` for the current φ (useful for parity checks and stability plots)."""
        bn_mask = eig_mask if self.bn_mode is BatchNormMode.MASKED else None
        z = self.phi(eigvals, bn_mask) * eig_mask[..., None].astype(eigvals.dtype)
        return basis_invariant_tensor(eigvecs, z)

    def spectral_tensor_from_adjacency(self, adj, node_mask, d: int):
        """``W[B, N, N, m]`` computed from the graph itself, with **exact gradients w.r.t. ``adj``** (edge weights).

        Same value as :meth:`spectral_tensor` on ``eigenkit.graph.dense_laplacian_eigs(adj, node_mask, d)`` (the
        ``d`` smallest pairs of the symmetric normalised Laplacian, as the official preprocessing), but
        differentiated by divided differences (:func:`eigenkit.graph.dense_laplacian_spectral_tensor`), so the
        gradient is exact on symmetric graphs with repeated eigenvalues (rings, cliques, hypercubes), where
        gradients through precomputed eigenvectors are NaN. φ's parameters get their usual gradients; in train mode
        φ's BatchNorm statistics are computed and updated exactly as in :meth:`spectral_tensor`.
        """
        masked = self.bn_mode is BatchNormMode.MASKED
        graphdef, state = nnx.split(self.phi)

        def phi(lam, eig_mask):
            return self.phi(lam, eig_mask if masked else None)

        def phi_pure(lam, eig_mask):  # side-effect-free copy for the within-eigenspace derivative
            return nnx.merge(graphdef, state, copy=True)(lam, eig_mask if masked else None)

        return eg.dense_laplacian_spectral_tensor(adj, node_mask, phi, d, derivative=phi_pure)

    def from_adjacency(self, adj: jax.Array, node_mask: jax.Array, d: int) -> jax.Array:
        """``PE[B, N, pe_dims]`` from ``adj[B, N, N]`` (weighted, symmetric) and ``node_mask[B, N]``, computing the
        spectrum inside — the gradient path to use when differentiating the PE w.r.t. the graph (edge weights).

        Equals ``self(*dense_laplacian_eigs(adj, node_mask, d)[:1], ...)`` in value (see
        :meth:`spectral_tensor_from_adjacency`); gradients w.r.t. ``adj`` are exact on any spectrum.

        Example:
          >>> import jax, jax.numpy as jnp
          >>> from flax import nnx
          >>> from eigenkit.methods.spe import SPE
          >>> spe = SPE(n_phi=2, pe_dims=3, rho_layers=1, rho_hidden=8, rngs=nnx.Rngs(0))
          >>> spe.eval()
          >>> ring = jnp.roll(jnp.eye(6), 1, axis=1) + jnp.roll(jnp.eye(6), -1, axis=1)  # benzene-like ring
          >>> f = lambda w: jnp.sum(spe.from_adjacency((w * ring)[None], jnp.ones((1, 6), bool), 6))
          >>> bool(jnp.all(jnp.isfinite(jax.grad(f)(jnp.ones((6, 6))))))
          True
        """
        x = self.spectral_tensor_from_adjacency(adj, node_mask, d)
        return self._rho(x, node_mask, adj)

    def __call__(self, eigvals: jax.Array, eigvecs: jax.Array, eig_mask: jax.Array, node_mask: jax.Array,
                 adj: jax.Array | None, *, pairs: PairIndex | None = None) -> jax.Array:
        """``eigvals[B, d]``, ``eigvecs[B, N, d]``, ``eig_mask[B, d]``, ``node_mask[B, N]``, ``adj[B, N, N]``
        → ``PE[B, N, pe_dims]``. To differentiate w.r.t. the graph, use :meth:`from_adjacency` instead
        (gradients through precomputed eigenvectors are NaN on repeated eigenvalues).

        ``pairs`` (:class:`~eigenkit.methods.spe.PairIndex`, from ``with_pair_index``): run ρ on the real node pairs
        only (``adj`` unused; the tables carry the graph). Same PE, BatchNorm statistics and gradients as the dense
        path in ``BatchNormMode.MASKED`` (the only mode it supports: ``OFFICIAL`` statistics include padded columns),
        at ``Σ n_b² / (B N²)`` of the ρ rows."""
        x = self.spectral_tensor(eigvals, eigvecs, eig_mask)
        if pairs is not None:
            return self._rho_pairs(x, node_mask, pairs)
        if adj is None:
            raise ValueError("adj [B, N, N] is required unless pairs is given")
        return self._rho(x, node_mask, adj)

    def _run_rho(self, h, apply):
        if self.remat:
            return remat_sequential(list(self.rho), h, apply)
        for layer in self.rho:
            h = apply(layer, h)
        return h

    def _rho_pairs(self, x, node_mask, pairs: PairIndex):
        if self.bn_mode is not BatchNormMode.MASKED:
            raise ValueError("the node-pair layout (pairs=...) computes BatchNormMode.MASKED statistics; "
                             f"this SPE has bn_mode={self.bn_mode} (use the dense path: pairs=None)")
        b, n, _, m = x.shape
        mask = jnp.asarray(pairs.row_mask)
        w = mask[:, None].astype(x.dtype)
        h = x.reshape(b * n * n, m)[jnp.asarray(pairs.dense_row)] * w
        nbr, rev = jnp.asarray(pairs.neighbours), jnp.asarray(pairs.reverse)
        h = self._run_rho(h, lambda layer, h: layer.on_rows(h, nbr, rev, mask=mask))
        pe = jax.ops.segment_sum(h * w, jnp.asarray(pairs.node), num_segments=b * n + 1,
                                 indices_are_sorted=True)[:b * n]
        return pe.reshape(b, n, -1) * node_mask[..., None].astype(x.dtype)

    def _rho(self, x, node_mask, adj):
        rows = node_mask[:, :, None]
        if self.bn_mode is BatchNormMode.MASKED:
            bn_mask = rows & node_mask[:, None, :]
        else:
            bn_mask = jnp.broadcast_to(rows, x.shape[:3])
        x = self._run_rho(x, lambda layer, x: layer(x, adj, mask=bn_mask))
        cols = node_mask[:, None, :, None].astype(x.dtype)
        pe = jnp.sum(x * cols, axis=2)
        return pe * node_mask[..., None].astype(x.dtype)


class SignNet(nnx.Module):
    """SignNet-style sign-invariant PE (Lim et al. 2023; official ``SignInvPe`` wiring in Graph-COM/SPE):
    ``PE = ρ([φ(v_i) + φ(−v_i)]_{i=1..d})`` with φ a GIN over the node axis applied to each eigenvector as a
    1-channel node signal (eigenvectors are a batch axis), ``phi_out`` channels per eigenvector, and ρ an MLP on the
    concatenation over eigenvectors (padded eigenvectors contribute 0). Sign invariant, **not** basis invariant.

    ``(eigvecs[B, N, d], eig_mask[B, d], node_mask[B, N], adj[B, N, N]) → PE[B, N, pe_dims]``.
    """

    def __init__(self, n_eigs: int, pe_dims: int, *, gin_layers: int = 3, hidden: int = 32, phi_out: int = 4,
                 n_mlp_layers: int = 2, param_dtype=jnp.float32, rngs: nnx.Rngs):
        widths = [1] + [hidden] * (gin_layers - 1) + [phi_out]
        self.phi = nnx.List([
            DenseGINLayer(widths[i], widths[i + 1], hidden_features=hidden, n_mlp_layers=n_mlp_layers,
                          param_dtype=param_dtype, rngs=rngs)
            for i in range(gin_layers)
        ])
        self.rho = MLP(n_mlp_layers, n_eigs * phi_out, hidden, pe_dims, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, eigvecs, eig_mask, node_mask, adj, *, pairs: PairIndex | None = None):
        """``pairs``: run φ on the real ``(node, eigenvector)`` rows only (the node-pair rows of
        :func:`~eigenkit.methods.spe.pair_index`, column ``j`` read as eigenvector ``j``; rows with ``j >= d_b``
        masked), ``adj`` unused. Same PE, statistics and gradients as the dense path."""
        b, n, d = eigvecs.shape
        mask = node_mask[:, :, None] & eig_mask[:, None, :]
        if pairs is not None:
            return self._on_pairs(eigvecs, eig_mask, mask, node_mask, pairs)
        if adj is None:
            raise ValueError("adj [B, N, N] is required unless pairs is given")

        def phi(x):
            for layer in self.phi:
                x = layer(x, adj, mask=mask)
            return x

        x = eigvecs[..., None]
        h = phi(x) + phi(-x)
        h = h * mask[..., None].astype(h.dtype)
        pe = self.rho(h.reshape(b, n, -1), mask=node_mask)
        return pe * node_mask[..., None].astype(pe.dtype)

    def _on_pairs(self, eigvecs, eig_mask, mask, node_mask, pairs: PairIndex):
        b, n, d = eigvecs.shape
        dense_row = jnp.asarray(pairs.dense_row)
        gb, v, j = dense_row // (n * n), (dense_row // n) % n, dense_row % n
        real = jnp.asarray(pairs.row_mask) & (j < d)
        jc = jnp.minimum(j, d - 1)
        real = real & eig_mask[gb, jc]
        row = gb * (n * d) + v * d + jc  # index into eigvecs.reshape(B·N·d)
        w = real[:, None].astype(eigvecs.dtype)
        x = eigvecs.reshape(-1)[row][:, None] * w
        nbr, rev = jnp.asarray(pairs.neighbours), jnp.asarray(pairs.reverse)

        def phi(x):
            for layer in self.phi:
                x = layer.on_rows(x, nbr, rev, mask=real)
            return x

        h = (phi(x) + phi(-x)) * w
        dense = jnp.zeros((b * n * d, h.shape[-1]), h.dtype).at[row].add(h)  # real rows are distinct
        pe = self.rho(dense.reshape(b, n, -1), mask=node_mask)
        return pe * node_mask[..., None].astype(pe.dtype)


class PEGraphRegressor(nnx.Module):
    """GINE graph regressor (official ``Model`` + ``GINEBaseModel``) with a positional encoding of kind
    :class:`PEKind`: ``NONE``; ``LAPPE`` (the ``d`` eigenvectors as node features, random sign flips when a ``key``
    is given, i.e. at training time); ``SPE`` (:class:`SPE`); ``SIGNNET`` (:class:`SignNet`, GIN depth/width =
    ``rho_layers`` / ``rho_hidden``). The PE enters as ``Linear(PE)`` added to the node
    embedding and through a PE MLP in every GINE layer (official ``pe_aggregate: add``).

    ``__call__(batch: GraphBatch, *, key=None) → [B]`` predictions.
    """

    def __init__(self, pe_kind: PEKind, *, n_node_types: int, n_edge_types: int, n_eigs: int, hidden: int = 128,
                 n_layers: int = 4, n_mlp_layers: int = 3, pooling: Pooling = Pooling.MEAN, residual: bool = True,
                 pe_dims: int = 37, n_phi: int = 16, phi_layers: int = 3, phi_hidden: int = 16,
                 rho_layers: int = 8, rho_hidden: int = 128, bn_mode: BatchNormMode = BatchNormMode.MASKED,
                 phi_kind: EigenvalueNetKind = EigenvalueNetKind.MLP, remat: bool = False, param_dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.pe_kind = pe_kind
        self.spe = (SPE(n_phi, pe_dims, phi_layers=phi_layers, phi_hidden=phi_hidden, rho_layers=rho_layers,
                        rho_hidden=rho_hidden, n_mlp_layers=n_mlp_layers, phi_kind=phi_kind, bn_mode=bn_mode,
                        remat=remat, param_dtype=param_dtype, rngs=rngs) if pe_kind is PEKind.SPE else None)
        self.signnet = (SignNet(n_eigs, pe_dims, gin_layers=rho_layers, hidden=rho_hidden, n_mlp_layers=n_mlp_layers,
                                param_dtype=param_dtype, rngs=rngs) if pe_kind is PEKind.SIGNNET else None)
        pe_features = {PEKind.NONE: 0, PEKind.LAPPE: n_eigs, PEKind.SPE: pe_dims, PEKind.SIGNNET: pe_dims}[pe_kind]
        self.backbone = GINEGraphRegressor(n_layers, n_node_types, n_edge_types, hidden, pe_features=pe_features,
                                           pooling=pooling, n_mlp_layers=n_mlp_layers, residual=residual,
                                           param_dtype=param_dtype, rngs=rngs)

    def positional_encoding(self, batch: GraphBatch, *, key: jax.Array | None = None) -> jax.Array | None:
        """Flat node PEs ``[B·N, p]`` (None for ``PEKind.NONE``)."""
        b, n = batch.eigvecs.shape[:2]
        if self.pe_kind is PEKind.NONE:
            return None
        if self.pe_kind is PEKind.LAPPE:
            v = batch.eigvecs if key is None else random_sign_flip(batch.eigvecs, key=key)
            return v.reshape(b * n, -1)
        node_mask = batch.node_mask.reshape(b, n)
        if self.pe_kind is PEKind.SIGNNET:
            adj = None if batch.pairs is not None else dense_adjacency_of_batch(batch, batch.eigvecs.dtype)
            pe = self.signnet(batch.eigvecs, batch.eig_mask, node_mask, adj, pairs=batch.pairs)
        elif batch.pairs is not None:  # node-pair rows (with_pair_index): no dense adjacency needed
            pe = self.spe(batch.eigvals, batch.eigvecs, batch.eig_mask, node_mask, None, pairs=batch.pairs)
        else:
            adj = dense_adjacency_of_batch(batch, batch.eigvecs.dtype)
            pe = self.spe(batch.eigvals, batch.eigvecs, batch.eig_mask, node_mask, adj)
        return pe.reshape(b * n, -1)

    def __call__(self, batch: GraphBatch, *, key: jax.Array | None = None) -> jax.Array:
        pe = self.positional_encoding(batch, key=key)
        return self.backbone(batch.graphs, pe, node_mask=batch.node_mask, edge_mask=batch.edge_mask)
