"""SPE on molecule-sized graphs: Laplacian spectra and the ZINC model's forward + backward, eigenkit (JAX) vs the
official PyTorch code (Graph-COM/SPE) in the same run.

    python -m experiments.benchmarks.spe --official-src PATH_TO_Graph-COM_SPE \\
        [--out experiments/benchmarks/results/spe.json] [--threads N] [--repeats 5] [--ab-rounds R] [--n-graphs 128]
    python -m experiments.benchmarks.spe --official-src PATH --quick --out /tmp/spe_quick.json   # checks it runs
    python -m experiments.benchmarks.spe --official-src PATH --threads 1 --ab-rounds 10 \
        --out /tmp/spe_1thread.json   # the single-thread control, with the interleaved A/B

Baseline: the official code at ``22b10033564119f5296bf76d2c012489ef2b4aac`` (the commit of the checkout is recorded),
imported from ``--official-src`` (never copied) as ``experiments/spe/make_parity_fixtures.py`` does
(``import_official``: ``src/`` on ``sys.path``, ``torchmetrics`` stubbed), with ``torch_geometric`` installed.
The official model is built by its own ``construct_model`` from ``configs/zinc/SPE_gine_gin_mlp_pe37.yaml`` (4 GINE
layers of width 128, ρ = 8-layer GIN of width 128 (code ``phi``), 16 φ MLPs 1 → 16 → 16 → 1 (code ``psi``), 3-layer
BatchNorm MLPs, PE width 37, mean pooling, residual), with the MLP factory and the eigen preprocessing being the
official ``Trainer.create_mlp`` / ``Trainer.pre_transform`` **functions read from ``zinc/trainer.py``** (extracted
with ``ast`` and executed as they are: the module itself imports wandb / omegaconf / mmcv, which the computation
does not need). Batches are collated with ``torch_geometric.data.Batch.from_data_list`` (the official DataLoader's
collate differs only for BasisNet projections).

Data: ``--n-graphs`` (128, the official batch size) random molecule-like graphs of 18–38 nodes (ZINC's range):
random trees of maximum degree 4 plus 1–3 ring-closing edges, atom types 0–27, bond types 1–3, targets N(0, 1),
deterministic in ``--seed`` (one graph has exactly ``--max-nodes`` nodes). Full spectra: ``D = 37`` eigenpairs
(``d = min(n, 37)``, zero-padded: the official ``pe37`` preprocessing). MOSES molecules are not used (``molsets``
absent offline); the cost depends only on the graph sizes.

Correctness first (one subprocess, both sides; the run stops if it fails): the official model is initialised with
``torch.manual_seed(seed)`` (BatchNorm running statistics randomised so that eval mode is a real test), its
``state_dict`` exported as NumPy and loaded into ``eigenkit.methods.spe.PEGraphRegressor`` with
``load_official_state_dict`` (``BatchNormMode.OFFICIAL``, batch padded to its largest graph, eigen axis ``k = D``);
the timed workloads reuse these weights. Checked:

* eval-mode predictions on the official eigenpairs: ``rtol 2e-4, atol 2e-5`` (as ``tests/methods/test_spe_parity.py``);
* our eigenvalues vs the official ``Lambda``: ``atol 1e-4``; eval predictions on our own eigenpairs (basis
  invariance): relative L2 ``<= 1e-3``;
* train mode (the timed computation): predictions, loss and the gradients w.r.t. every parameter (relative L2 over
  all parameters; per tensor for information). Train-mode BatchNorm in the deep ρ amplifies float32 rounding (at
  width 32, 8 ρ layers, 8 graphs the official float32 gradients differ from the official float64 ones by ~7 %), so
  the official step is also run in float64 and ours (float32) must be within ``max(stop, 3 × official float32
  error)`` of it (stops: 1e-3 for predictions / loss, 1e-2 for gradients).

Timed (each workload in its own subprocess, so its peak-RSS increase is its own: ``ru_maxrss`` at the end minus
``VmRSS`` after imports and graph generation):

* ``model_fwd_bwd`` — the training loss ``mean |pred − y|`` (train mode, BatchNorm batch statistics) and its gradient
  w.r.t. all parameters on one batch. Ours: ``jax.jit(jax.value_and_grad(loss))`` over ``nnx.split`` parameters
  (updated BN statistics returned as aux), inputs on the device; compile (``lower().compile()``) apart. Official:
  ``zero_grad``, ``model(batch)``, ``nn.L1Loss``, ``backward``. Three eigenkit rows: ``eigenkit`` = the dense
  padded ρ with the official BatchNorm statistics (the computation the check compares, ``B · N_max²`` ρ rows);
  ``eigenkit_pairs`` = ρ on the real node pairs only (``spe.with_pair_index``, ``Σ n_b²`` rows, masked statistics,
  the library's default mode); ``eigenkit_pairs_remat`` = the same with ``remat=True`` (ρ's layers in a
  checkpointed ``lax.scan``: only layer inputs stored). The check also runs the pair rows on the official weights:
  eval predictions vs the official ones, train mode vs our dense masked path (same statistics), remat vs not.
* ``rho_mlp_floor`` — a lower bound for the node-pair rows, not a model: ρ's BatchNorm-ReLU MLP stack alone on the
  batch's real node-pair rows (``rho_layers × 3`` Linear layers of width 128), forward + backward, random weights.
* ``spectra`` — eigenpairs of the symmetric normalised Laplacian of every graph. Ours: the padded batched
  ``eigenkit.graph.laplacian_eigs`` that ``make_graph_batch`` calls (jitted from the unpadded edge lists, eigen axis
  zero-padded to ``D``), and ``make_graph_batch`` itself end to end on the host (padding included). Official:
  ``Trainer.pre_transform`` per graph (``get_laplacian`` + ``to_dense_adj`` + ``torch.linalg.eigh``), in a loop.

Per row: ``compile_s`` (ours), ``first_call_s``, ``steady_s`` (median of ``--repeats``), ``steady_cpu_s`` (process
CPU time, all threads), ``graphs_per_s``, ``peak_rss_increase_mb`` (ours also after compilation alone, and XLA's
temp-buffer estimate); ratios official / ours (> 1: ours faster / smaller). float32 on both sides. Threads: every
worker is pinned to ``--threads`` cores (default all available) with ``_common.pin_threads`` — the CPU affinity for
XLA, ``set_num_threads`` for torch — so both sides get the same cores. **Timings need an idle machine**: the load
average is recorded before the run (``machine_before``) and at the end (``machine_at_write``); compare only runs made
on an idle machine (on a loaded 2-core machine multi-threaded torch degrades by orders of magnitude: its threads wait
for each other at every op).
Every worker row records ``threads`` (``pin_threads``' report, measured CPU/wall ratio of its steady-state call).
``--ab-rounds R`` (> 0) adds two workers that build all sides of a workload in one process and time them
interleaved for R rounds (``interleaved_ab``): ``model_fwd_bwd`` (``eigenkit``, ``eigenkit_pairs``, with
``--official-src`` ``official_torch``) and ``spectra`` (``eigenkit_laplacian_eigs_jit``,
``eigenkit_make_graph_batch``, with ``--official-src`` ``official_pre_transform_loop``); ratios
``ab_ratio_<a>_over_<b>_median`` / ``_min``.
``--quick`` (16 graphs of 8–12 nodes, width 16, 4 φ nets, 2 ρ / 2 GINE layers, 2 repeats) checks the script end to
end; its timings mean nothing. Without ``--official-src`` only the eigenkit rows run (no check).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    machine_info,
    measured_parallelism,
    parser,
    peak_rss_mb,
    pin_threads,
    rss_mb,
    write_result,
)

ZINC_CONFIG = "configs/zinc/SPE_gine_gin_mlp_pe37.yaml"
PINNED_COMMIT = "22b10033564119f5296bf76d2c012489ef2b4aac"
FULL = {"n_graphs": 128, "min_nodes": 18, "max_nodes": 38, "width": 128, "n_psis": 16, "psi_hidden": 16,
        "rho_layers": 8, "base_layers": 4, "pe_dims": 37}
QUICK = {"n_graphs": 16, "min_nodes": 8, "max_nodes": 12, "width": 16, "n_psis": 4, "psi_hidden": 8,
         "rho_layers": 2, "base_layers": 2, "pe_dims": 37, "repeats": 2}
N_NODE_TYPES, N_EDGE_TYPES = 28, 3  # ZINC (config n_node_types / n_edge_types)
EVAL_RTOL, EVAL_ATOL = 2e-4, 2e-5   # tests/methods/test_spe_parity.py
EIGVAL_ATOL, LOSS_RTOL, GRAD_RTOL, OWN_SPECTRA_RTOL = 1e-4, 1e-3, 1e-2, 1e-3
TRAIN_FLOOR_FACTOR = 3.0  # train mode: ours vs official float64 may be this many times the official float32 error
PAIR_VARIANTS = {"ours_model_pairs": ("eigenkit_pairs", False),  # worker: (impl, remat)
                 "ours_model_pairs_remat": ("eigenkit_pairs_remat", True)}
WORKERS = ("check", "ours_model", *PAIR_VARIANTS, "ours_rho_mlp_floor", "official_model", "ours_spectra",
           "ours_make_graph_batch", "official_spectra", "ab_model", "ab_spectra")
_PINNED: dict = {}  # a worker's pin_threads report
# the interleaved A/B workers: workload -> sides (worker names), the official side only with --official-src
AB_SIDES = {"ab_model": ("model_fwd_bwd", ("ours_model", "ours_model_pairs"), "official_model"),
            "ab_spectra": ("spectra", ("ours_spectra", "ours_make_graph_batch"), "official_spectra")}


# ----------------------------------------------------------------------------------------------------- data


def molecule_like_graphs(n_graphs: int, min_nodes: int, max_nodes: int, seed: int) -> list[dict]:
    """Random molecule-like graphs: a random tree of maximum degree 4 plus 1–3 ring-closing edges (between nodes of
    degree < 4). Per graph: ``n``, ``edge_index [2, 2m]`` (both directions), ``edge_attr [2m]`` (bond types 1–3),
    ``x [n]`` (atom types 0–27), ``y`` (float). Graph 0 has exactly ``max_nodes`` nodes."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n_graphs):
        n = max_nodes if g == 0 else int(rng.integers(min_nodes, max_nodes + 1))
        deg = np.zeros(n, np.int64)
        edges = set()
        for i in range(1, n):
            free = np.flatnonzero(deg[:i] < 4)
            p = int(rng.choice(free))
            edges.add((p, i))
            deg[p] += 1
            deg[i] += 1
        for _ in range(int(rng.integers(1, 4))):
            free = np.flatnonzero(deg < 4)
            if free.size < 2:
                break
            u, v = (int(a) for a in rng.choice(free, size=2, replace=False))
            u, v = min(u, v), max(u, v)
            if (u, v) not in edges:
                edges.add((u, v))
                deg[u] += 1
                deg[v] += 1
        e = np.array(sorted(edges), np.int64).T
        bond = rng.integers(1, N_EDGE_TYPES + 1, e.shape[1])
        out.append({"n": n, "edge_index": np.concatenate([e, e[::-1]], axis=1),
                    "edge_attr": np.concatenate([bond, bond]), "x": rng.integers(0, N_NODE_TYPES, n),
                    "y": float(rng.standard_normal())})
    return out


def _budgets(graphs) -> tuple[int, int]:
    return max(g["n"] for g in graphs), max(g["edge_index"].shape[1] for g in graphs)


def to_jraph(graphs):
    """The unpadded ``jraph.batch`` layout ``make_graph_batch`` takes (senders = official ``edge_index[0]``)."""
    import jraph

    offs = np.concatenate([[0], np.cumsum([g["n"] for g in graphs])])
    ei = np.concatenate([g["edge_index"] + o for g, o in zip(graphs, offs[:-1])], axis=1)
    return jraph.GraphsTuple(
        nodes=np.concatenate([g["x"] for g in graphs]).astype(np.int32),
        edges=np.concatenate([g["edge_attr"] for g in graphs]).astype(np.int32),
        senders=ei[0].astype(np.int32), receivers=ei[1].astype(np.int32),
        n_node=np.array([g["n"] for g in graphs], np.int32),
        n_edge=np.array([g["edge_index"].shape[1] for g in graphs], np.int32),
        globals=np.array([g["y"] for g in graphs], np.float32))


def _graph_stats(graphs) -> dict:
    n = np.array([g["n"] for g in graphs])
    m = np.array([g["edge_index"].shape[1] // 2 for g in graphs])
    return {"n_graphs": len(graphs), "nodes_min": int(n.min()), "nodes_max": int(n.max()),
            "nodes_mean": float(n.mean()), "edges_undirected_mean": float(m.mean()),
            "rings_mean": float(np.mean(m - n + 1))}


# ------------------------------------------------------------------------------------------------- official


def _trainer_functions(src: pathlib.Path, names: tuple[str, ...], namespace: dict) -> dict:
    """The methods ``names`` of the official ``Trainer`` (``zinc/trainer.py``), compiled from their source as they
    are and executed in ``namespace`` (so the module's wandb / omegaconf / mmcv imports are not needed)."""
    path = src / "zinc" / "trainer.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is --official-src the root of Graph-COM/SPE?")
    tree = ast.parse(path.read_text(), str(path))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    funcs = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {f.name for f in funcs}
    if missing:
        raise RuntimeError(f"Trainer in {path} has no {sorted(missing)}")
    for f in funcs:
        f.decorator_list = []
    ns = dict(namespace)
    exec(compile(ast.Module(body=funcs, type_ignores=[]), str(path), "exec"), ns)  # the official source, unchanged
    return {n: ns[n] for n in names}


class Official:
    """The official code driven as its ZINC trainer does: config, model, MLP factory, eigen preprocessing."""

    def __init__(self, args):
        import torch
        import torch_geometric
        import yaml

        from experiments._official import git_commit
        from experiments.spe.make_parity_fixtures import import_official

        src = pathlib.Path(args.official_src).resolve()
        import_official(src, args.pyg_path)
        from src.mlp import MLP  # official
        from src.model import construct_model  # official
        from src.schema import Schema  # official
        from torch_geometric.data import Batch, Data
        from torch_geometric.utils import get_laplacian, to_dense_adj

        torch.set_num_threads(args.threads)
        raw = yaml.safe_load((src / ZINC_CONFIG).read_text())
        raw.update(n_base_layers=args.base_layers, base_hidden_dims=args.width, node_emb_dims=args.width,
                   mlp_hidden_dims=args.width, phi_hidden_dims=args.width, n_phi_layers=args.rho_layers,
                   n_psis=args.n_psis, psi_hidden_dims=args.psi_hidden, pe_dims=args.pe_dims)
        import dataclasses

        self.cfg = Schema(**{f.name: raw[f.name] for f in dataclasses.fields(Schema)})
        self.trainer_self = types.SimpleNamespace(cfg=self.cfg)
        fns = _trainer_functions(src, ("create_mlp", "pre_transform"), {
            "torch": torch, "nn": torch.nn, "MLP": MLP, "Data": Data, "Batch": Batch, "Schema": Schema,
            "get_laplacian": get_laplacian, "to_dense_adj": to_dense_adj})
        self._create_mlp, self._pre_transform = fns["create_mlp"], fns["pre_transform"]
        self.construct_model, self.torch, self.Data, self.Batch = construct_model, torch, Data, Batch
        self.info = {"src": str(src), "commit": git_commit(src), "pinned_commit": PINNED_COMMIT,
                     "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
                     "torch_threads": torch.get_num_threads(), "config_file": ZINC_CONFIG,
                     "config": dataclasses.asdict(self.cfg)}

    def create_mlp(self, in_dims: int, out_dims: int):
        return self._create_mlp(self.trainer_self, in_dims, out_dims)

    def pre_transform(self, data):
        return self._pre_transform(self.trainer_self, data)

    def model(self, seed: int, weights: str | None = None):
        """``construct_model`` with the trainer's keyword arguments; ``weights`` (npz of a ``state_dict``) loaded."""
        self.torch.manual_seed(seed)
        cfg = self.cfg
        model = self.construct_model(cfg, self.create_mlp, deg=None, device="cpu", residual=cfg.residual,
                                     bn=cfg.batch_norm, sn=cfg.graph_norm, feature_type="discrete")
        if weights is not None:
            with np.load(weights) as f:
                model.load_state_dict({k: self.torch.from_numpy(f[k]) for k in f.files})
        return model

    def datas(self, graphs, *, spectra: bool = True):
        torch = self.torch
        out = []
        for g in graphs:
            d = self.Data(x=torch.tensor(g["x"][:, None], dtype=torch.long),
                          edge_index=torch.tensor(g["edge_index"], dtype=torch.long),
                          edge_attr=torch.tensor(g["edge_attr"], dtype=torch.long),
                          y=torch.tensor([g["y"]], dtype=torch.float32))
            out.append(self.pre_transform(d) if spectra else d)
        return out

    def batch(self, graphs):
        return self.Batch.from_data_list(self.datas(graphs))


# -------------------------------------------------------------------------------------------------- eigenkit


def ours_model(args, weights: str | None, *, masked: bool = False, remat: bool = False):
    from flax import nnx

    from eigenkit.methods import spe

    model = spe.PEGraphRegressor(
        spe.PEKind.SPE, n_node_types=N_NODE_TYPES, n_edge_types=N_EDGE_TYPES, n_eigs=args.pe_dims,
        hidden=args.width, n_layers=args.base_layers, n_mlp_layers=3, pe_dims=args.pe_dims, n_phi=args.n_psis,
        phi_layers=3, phi_hidden=args.psi_hidden, rho_layers=args.rho_layers, rho_hidden=args.width,
        bn_mode=spe.BatchNormMode.MASKED if masked else spe.BatchNormMode.OFFICIAL, remat=remat,
        rngs=nnx.Rngs(args.seed))
    if weights is not None:
        with np.load(weights) as f:
            spe.load_official_state_dict(model, {k: f[k] for k in f.files})
    return model


def ours_batch(graphs, pe_dims: int, eigvals=None, eigvecs=None):
    """``make_graph_batch`` padded to the batch's largest graph (official ``N_max``) with eigen axis ``k = D``."""
    from eigenkit.methods import spe

    n_max, e_max = _budgets(graphs)
    return spe.make_graph_batch(to_jraph(graphs), max_nodes=n_max, max_edges=e_max, k=pe_dims, eigvals=eigvals,
                                eigvecs=eigvecs)


def loss_and_grad_fn(model):
    """``(params, rest, batch) → ((loss, (new_rest, pred)), grads)``, jitted: the L1 loss ``mean |pred − y|`` and
    its gradient w.r.t. every ``nnx.Param`` (``rest`` = BatchNorm statistics, updated ones returned)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, rest, batch):
        # fresh Variable objects at this trace level: BatchNorm updates its statistics inside the grad trace
        m = nnx.merge(graphdef, params, jax.tree.map(lambda x: x, rest))
        pred = m(batch)
        return jnp.mean(jnp.abs(pred - batch.graphs.globals)), (nnx.split(m, nnx.Param, ...)[2], pred)

    return jax.jit(jax.value_and_grad(loss, has_aux=True)), params, rest


def _official_eigenpairs(datas, pe_dims: int):
    """Official ``Lambda [1, D]`` / ``V [n, D]`` per graph → the ``d = min(n, D)`` stored pairs."""
    lam, vec = [], []
    for d in datas:
        k = min(d.num_nodes, pe_dims)
        lam.append(d.Lambda.numpy()[0, :k])
        vec.append(d.V.numpy()[:, :k])
    return lam, vec


# --------------------------------------------------------------------------------------------------- workers


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def worker_check(args) -> dict:
    """Both sides on the same graphs and weights: eval / train predictions, loss, gradients, eigenvalues.
    Writes the (BN-randomised) official ``state_dict`` to ``--weights`` for the timed workers."""
    import jax
    from flax import nnx

    from eigenkit.methods import spe

    off = Official(args)
    torch = off.torch
    graphs = molecule_like_graphs(args.n_graphs, args.min_nodes, args.max_nodes, args.seed)
    datas = off.datas(graphs)
    batch_t = off.Batch.from_data_list(datas)
    model_t = off.model(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():  # random running statistics: eval mode is then a real test (as the parity fixtures)
        for mod in model_t.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.copy_(0.5 * torch.randn(mod.running_mean.shape, generator=gen))
                mod.running_var.copy_(0.5 + 1.5 * torch.rand(mod.running_var.shape, generator=gen))
    sd = {k: v.detach().numpy().copy() for k, v in model_t.state_dict().items()}
    np.savez(args.weights, **sd)
    n_params_official = sum(p.numel() for p in model_t.parameters())

    model_t.eval()
    with torch.no_grad():
        y_off_eval = model_t(batch_t).numpy()
    # the official train step in float32 (what is timed) and in float64 (the reference: train-mode BatchNorm in a
    # deep net amplifies float32 rounding, so ours is compared with both and the official float32 error is the floor)
    model_64 = copy.deepcopy(model_t).double()
    batch_64 = batch_t.clone()
    for key in ("Lambda", "V", "y"):
        batch_64[key] = batch_t[key].double()
    y_off_train, loss_t, grads_sd = _official_train_step(model_t, batch_t, sd)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the official code allocates padding with torch.zeros(...)
    try:
        y_off64_train, loss_t64, grads_sd64 = _official_train_step(model_64, batch_64, sd)
    finally:
        torch.set_default_dtype(default)

    lam_off, vec_off = _official_eigenpairs(datas, args.pe_dims)
    b_off = ours_batch(graphs, args.pe_dims, eigvals=lam_off, eigvecs=vec_off)
    b_own = ours_batch(graphs, args.pe_dims)
    model = ours_model(args, args.weights)
    n_params_ours = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    model.eval()
    graphdef, state = nnx.split(model)
    fwd = jax.jit(lambda st, b: nnx.merge(graphdef, st)(b))
    y_eval = np.asarray(fwd(state, b_off))
    y_eval_own = np.asarray(fwd(state, b_own))
    model.train()
    step, params, rest = loss_and_grad_fn(model)
    (loss, (_, y_train)), grads = step(params, rest, b_off)
    y_train = np.asarray(y_train)
    paths, g_ours = zip(*[(jax.tree_util.keystr(k), np.asarray(x, np.float64))
                          for k, x in jax.tree_util.tree_flatten_with_path(grads)[0]])

    def as_ours(gsd):  # official gradients in eigenkit's layout (the loader casts them to float32)
        m = ours_model(args, None)
        return [np.asarray(x, np.float64) for x in jax.tree.leaves(
            nnx.state(spe.load_official_state_dict(m, gsd), nnx.Param))]

    g_ref, g_ref64 = as_ours(grads_sd), as_ours(grads_sd64)

    def tree_rel(xs, ys):
        return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(xs, ys)))
                     / max(np.sqrt(sum(np.sum(y ** 2) for y in ys)), 1e-30))

    gnorm = np.sqrt(sum(np.sum(b ** 2) for b in g_ref))
    # Linear biases right before a train-mode BatchNorm have gradient 0 in exact arithmetic (the BN removes the
    # mean): on both sides they are float32 noise, so errors per tensor are measured against the total gradient
    # norm, and relative to the tensor's own norm only for tensors holding >= 1e-3 of the total.
    per_total = max(float(np.linalg.norm(a - b)) for a, b in zip(g_ours, g_ref)) / max(gnorm, 1e-30)
    big = [(_rel(a, b), float(np.linalg.norm(b)), p) for p, a, b in zip(paths, g_ours, g_ref)
           if np.linalg.norm(b) >= 1e-3 * gnorm]
    big.sort(reverse=True)

    pairs = _check_pairs(args, b_off, y_off_eval)

    lam_own = np.asarray(b_own.eigvals)
    eig_err = max(float(np.max(np.abs(lam_own[b, :len(lo)] - lo))) for b, lo in enumerate(lam_off))
    eval_err = np.abs(y_eval - y_off_eval)
    eval_ok = bool(np.all(eval_err <= EVAL_ATOL + EVAL_RTOL * np.abs(y_off_eval)))
    out = {
        "n_params": {"official": int(n_params_official), "ours": n_params_ours,
                     "note": "official counts GINPhi's never-called output MLP (spe.md quirk 3)"},
        "eval_pred": {"max_abs_err": float(eval_err.max()), "max_abs_official": float(np.abs(y_off_eval).max()),
                      "rtol": EVAL_RTOL, "atol": EVAL_ATOL, "passed": eval_ok,
                      "first_official": y_off_eval[:4].tolist(), "first_ours": y_eval[:4].tolist()},
        "eval_pred_own_spectra": {"rel_l2_err": _rel(y_eval_own, y_off_eval),
                                  "max_abs_err": float(np.max(np.abs(y_eval_own - y_off_eval))),
                                  "stop_above_rel": OWN_SPECTRA_RTOL,
                                  "passed": _rel(y_eval_own, y_off_eval) <= OWN_SPECTRA_RTOL},
        "eigvals": {"max_abs_err": eig_err, "atol": EIGVAL_ATOL, "passed": eig_err <= EIGVAL_ATOL},
        "train_pred": {"rel_l2_err": _rel(y_train, y_off_train), "rel_l2_err_vs_official_f64":
                       _rel(y_train, y_off64_train), "official_f32_vs_f64": _rel(y_off_train, y_off64_train)},
        "train_loss": {"official": loss_t, "official_f64": loss_t64, "ours": float(loss),
                       "rel_err": abs(float(loss) - loss_t) / max(abs(loss_t), 1e-30),
                       "rel_err_vs_official_f64": abs(float(loss) - loss_t64) / max(abs(loss_t64), 1e-30),
                       "official_f32_vs_f64": abs(loss_t - loss_t64) / max(abs(loss_t64), 1e-30)},
        "grads": {"rel_l2_err_all_params": tree_rel(g_ours, g_ref),
                  "rel_l2_err_all_params_vs_official_f64": tree_rel(g_ours, g_ref64),
                  "official_f32_vs_f64": tree_rel(g_ref, g_ref64),
                  "max_err_per_tensor_over_total_norm": per_total,
                  "worst_tensors_rel_own_norm": [{"path": p, "rel_l2_err": e, "grad_norm": n}
                                                 for e, n, p in big[:3]],
                  "n_tensors": len(g_ref), "n_tensors_with_1e-3_of_norm": len(big),
                  "grad_norm_official": float(gnorm)},
        "pairs": pairs,
        "official": off.info,
    }
    # train mode: ours (float32) must be as close to the official float64 result as the official float32 run is,
    # within a factor TRAIN_FLOOR_FACTOR, or within the absolute stops
    stops = {}
    for name, stop, key in (("train_loss", LOSS_RTOL, "rel_err_vs_official_f64"),
                            ("train_pred", LOSS_RTOL, "rel_l2_err_vs_official_f64"),
                            ("grads", GRAD_RTOL, "rel_l2_err_all_params_vs_official_f64")):
        sec = out[name]
        ours_err = sec[key]
        sec["stop_above"] = max(stop, TRAIN_FLOOR_FACTOR * sec["official_f32_vs_f64"])
        stops[name] = sec["passed"] = bool(ours_err <= sec["stop_above"])
    out["passed"] = bool(eval_ok and out["eigvals"]["passed"] and all(stops.values())
                         and out["eval_pred_own_spectra"]["passed"] and pairs["passed"])
    return out


def _check_pairs(args, b_off, y_off_eval) -> dict:
    """The node-pair path (``BatchNormMode.MASKED``, the timed ``ours_model_pairs*`` rows) on the official weights:
    eval-mode predictions vs the official ones (running statistics: independent of the BN mode); train mode vs our
    dense masked path (the same statistics; float32 on both, so the gap is reassociation amplified by the deep
    train-mode BatchNorm: the same stops as the official comparison); remat vs no remat."""
    import jax
    from flax import nnx

    from eigenkit.methods import spe

    b_pairs = spe.with_pair_index(b_off)
    res = {}
    for name, batch, remat in (("dense_masked", b_off, False), ("pairs", b_pairs, False),
                               ("pairs_remat", b_pairs, True)):
        model = ours_model(args, args.weights, masked=True, remat=remat)
        model.eval()
        graphdef, state = nnx.split(model)
        y_eval = np.asarray(jax.jit(lambda st, b, g=graphdef: nnx.merge(g, st)(b))(state, batch))
        model.train()
        step, params, rest = loss_and_grad_fn(model)
        (loss, (_, y_train)), grads = step(params, rest, batch)
        res[name] = (y_eval, float(loss), np.asarray(y_train),
                     [np.asarray(g, np.float64) for g in jax.tree.leaves(grads)])

    def tree_rel(xs, ys):
        return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(xs, ys)))
                     / max(np.sqrt(sum(np.sum(y ** 2) for y in ys)), 1e-30))

    out = {"rows_real": int(b_pairs.pairs.row_mask.sum()), "rows_budget": int(b_pairs.pairs.row_mask.size),
           "rows_dense": int(np.prod(b_off.eigvecs.shape[:2])) * b_off.eigvecs.shape[1]}
    ok = True
    for name in ("pairs", "pairs_remat"):
        y_eval, loss, y_train, g = res[name]
        _, loss0, y_train0, g0 = res["dense_masked"]
        err = np.abs(y_eval - y_off_eval)
        sec = {"eval_vs_official_max_abs_err": float(err.max()),
               "eval_passed": bool(np.all(err <= EVAL_ATOL + EVAL_RTOL * np.abs(y_off_eval))),
               "train_pred_rel_l2_vs_dense_masked": _rel(y_train, y_train0),
               "train_loss_rel_vs_dense_masked": abs(loss - loss0) / max(abs(loss0), 1e-30),
               "grads_rel_l2_vs_dense_masked": tree_rel(g, g0)}
        sec["passed"] = bool(sec["eval_passed"] and sec["train_pred_rel_l2_vs_dense_masked"] <= LOSS_RTOL
                             and sec["train_loss_rel_vs_dense_masked"] <= LOSS_RTOL
                             and sec["grads_rel_l2_vs_dense_masked"] <= GRAD_RTOL)
        ok = ok and sec["passed"]
        out[name] = sec
    out["passed"] = ok
    return out


def _official_train_step(model, batch, sd):
    """One official train-mode forward + L1 loss + backward: predictions, loss, gradients as a ``state_dict``
    (buffers from ``sd``; parameters that get no gradient, i.e. GINPhi's unused output MLP, are zeros)."""
    import torch

    model.train()
    model.zero_grad(set_to_none=True)
    pred = model(batch)
    loss = torch.nn.L1Loss()(pred, batch.y)
    loss.backward()
    grads = dict(sd)
    for k, p in model.named_parameters():
        grads[k] = np.zeros(sd[k].shape, np.float64) if p.grad is None else p.grad.double().numpy().copy()
    return pred.detach().double().numpy(), float(loss), grads


def _timed(out: dict, run, repeats: int, n_graphs: int, base: float) -> dict:
    """First call and steady state (median wall time of ``repeats``), plus the median process CPU time of the
    steady calls, all threads together (a hint at contention: compare it with wall time × threads)."""
    cpu = []

    def timed_run():
        c0 = time.process_time()
        run()
        cpu.append(time.process_time() - c0)

    first, steady = first_and_median(timed_run, repeats)
    out.update(first_call_s=first, steady_s=steady, steady_cpu_s=float(np.median(cpu[1:])),
               graphs_per_s=n_graphs / steady, peak_rss_increase_mb=peak_rss_mb() - base)
    return out


def _with_parallelism(out: dict, run) -> dict:
    out["threads"] = {**_PINNED, "measured_parallelism": measured_parallelism(run)}
    return out


def worker_ours(args) -> dict:
    out, run, base = ours_side(args, args.worker)
    _timed(out, run, args.repeats, args.n_graphs, base)
    if out["workload"] == "model_fwd_bwd":
        out["loss"] = float(run()[0][0])
    return _with_parallelism(out, run)


def ours_side(args, worker: str):
    """The eigenkit side of ``worker`` built and compiled: ``(row, run, base)``, ``run`` the timed call (blocks),
    ``base`` the RSS after imports and graph generation."""
    import jax
    import jax.numpy as jnp

    from eigenkit import graph as eg
    from eigenkit.methods import spe

    graphs = molecule_like_graphs(args.n_graphs, args.min_nodes, args.max_nodes, args.seed)
    n_max, e_max = _budgets(graphs)
    base = rss_mb()
    out: dict = {"impl": "eigenkit", **machine_info()}
    if worker == "ours_model" or worker in PAIR_VARIANTS:
        out["workload"] = "model_fwd_bwd"
        if worker == "ours_model":  # dense padded ρ, official BatchNorm statistics (the parity computation)
            batch = jax.device_put(ours_batch(graphs, args.pe_dims))
            model = ours_model(args, args.weights)
        else:  # node-pair rows, masked statistics (the library's default mode)
            out["impl"], remat = PAIR_VARIANTS[worker]
            batch = jax.device_put(spe.with_pair_index(ours_batch(graphs, args.pe_dims)))
            model = ours_model(args, args.weights, masked=True, remat=remat)
        model.train()
        step, params, rest = loss_and_grad_fn(model)
        t0 = time.perf_counter()
        comp = step.lower(params, rest, batch).compile()
        out["compile_s"] = time.perf_counter() - t0
        out["peak_rss_increase_after_compile_mb"] = peak_rss_mb() - base
        mem = comp.memory_analysis()
        if mem is not None:
            out["xla_temp_mb"] = mem.temp_size_in_bytes / 2**20
        run = lambda: jax.block_until_ready(comp(params, rest, batch))
    elif worker == "ours_rho_mlp_floor":
        # what the node-pair layout cannot go below: ρ's MLP stack alone (rho_layers × n_mlp_layers Linear of width
        # `width`, BatchNorm + ReLU between them) on the batch's real node-pair rows, forward + backward, no
        # aggregation, φ, W or GINE backbone; random weights (the cost does not depend on them)
        out["workload"] = "rho_mlp_floor"
        out["impl"] = "eigenkit_rho_mlp_floor"
        rows = int(spe.with_pair_index(ours_batch(graphs, args.pe_dims)).pairs.row_mask.sum())
        widths = [args.n_psis] + [args.width] * (args.rho_layers - 1) + [args.pe_dims]
        key = jax.random.key(args.seed)
        mats = []
        for i in range(args.rho_layers):
            dims = [widths[i], args.width, args.width, widths[i + 1]]
            for a, b_ in zip(dims[:-1], dims[1:]):
                key, sub = jax.random.split(key)
                mats.append(jax.random.normal(sub, (a, b_), jnp.float32) / np.sqrt(a))
        x = jax.random.normal(key, (rows, args.n_psis), jnp.float32)

        def chain(mats, x):
            for i, w in enumerate(mats):
                x = x @ w
                if i % 3 != 2:
                    mu = jnp.mean(x, 0)
                    x = jax.nn.relu((x - mu) * jax.lax.rsqrt(jnp.mean(jnp.square(x - mu), 0) + 1e-5))
            return jnp.mean(jnp.abs(x))

        comp = jax.jit(jax.value_and_grad(chain)).lower(mats, x).compile()
        out["rows"] = rows
        run = lambda: jax.block_until_ready(comp(mats, x))
    elif worker == "ours_spectra":
        out["workload"] = "spectra"
        out["impl"] = "eigenkit_laplacian_eigs_jit"
        k = min(args.pe_dims, n_max)
        g = jax.device_put(to_jraph(graphs))

        def eigs(g):
            s = eg.laplacian_eigs(g, n_max, k, eg.LaplacianKind.SYM_NORM, dtype=jnp.float32)
            pad = args.pe_dims - k
            return (jnp.pad(s.eigvals, ((0, 0), (0, pad))), jnp.pad(s.eigvecs, ((0, 0), (0, 0), (0, pad))),
                    jnp.pad(s.eig_mask, ((0, 0), (0, pad))))

        t0 = time.perf_counter()
        comp = jax.jit(eigs).lower(g).compile()
        out["compile_s"] = time.perf_counter() - t0
        run = lambda: jax.block_until_ready(comp(g))
    else:  # ours_make_graph_batch: the host-side call users make (padding + spectra), not jitted as a whole
        out["workload"] = "spectra"
        out["impl"] = "eigenkit_make_graph_batch"
        g = to_jraph(graphs)
        run = lambda: jax.block_until_ready(
            spe.make_graph_batch(g, max_nodes=n_max, max_edges=e_max, k=args.pe_dims))
    return out, run, base


def worker_official(args) -> dict:
    out, run, base = official_side(args, args.worker)
    _timed(out, run, args.repeats, args.n_graphs, base)
    if out["workload"] == "model_fwd_bwd":
        out["loss"] = float(run())
    return _with_parallelism(out, run)


def official_side(args, worker: str):
    """The official side of ``worker``, as :func:`ours_side`."""
    off = Official(args)
    torch = off.torch
    graphs = molecule_like_graphs(args.n_graphs, args.min_nodes, args.max_nodes, args.seed)
    base = rss_mb()
    out: dict = {"impl": "official_torch", "torch_threads": torch.get_num_threads()}
    if worker == "official_model":
        out["workload"] = "model_fwd_bwd"
        batch = off.batch(graphs)
        model = off.model(args.seed, args.weights)
        model.train()
        crit = torch.nn.L1Loss()

        def run():
            model.zero_grad(set_to_none=True)
            loss = crit(model(batch), batch.y)
            loss.backward()
            return loss
    else:
        out["workload"] = "spectra"
        out["impl"] = "official_pre_transform_loop"
        datas = off.datas(graphs, spectra=False)

        def run():
            for d in datas:
                off.pre_transform(d)

    return out, run, base


def worker_ab(args) -> dict:
    """All sides of one workload (``AB_SIDES``) built in this process, each called once (warm-up), then timed
    interleaved for ``--ab-rounds`` rounds; ratios of every other side over the first eigenkit one."""
    workload, ours, official = AB_SIDES[args.worker]
    sides = {}
    for w in ours:
        out, sides[w], _ = ours_side(args, w)
        sides[out["impl"]] = sides.pop(w)
    if args.official_src:
        out, run, _ = official_side(args, official)
        sides[out["impl"]] = run
    for run in sides.values():
        run()
    first, *others = sides
    return {"workload": workload, **interleaved_ab(sides, args.ab_rounds, [(o, first) for o in others]),
            "threads": _PINNED}


# ------------------------------------------------------------------------------------------------------ main


def _run_worker(args, name: str) -> dict:
    cmd = [sys.executable, "-m", "experiments.benchmarks.spe", "--worker", name, "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--seed", str(args.seed), "--ab-rounds", str(args.ab_rounds),
           *[x for k in FULL for x in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]]
    if args.weights:
        cmd += ["--weights", args.weights]
    if args.official_src:
        cmd += ["--official-src", args.official_src]
    if args.pyg_path:
        cmd += ["--pyg-path", args.pyg_path]
    env = dict(os.environ)
    if args.platform:
        env["JAX_PLATFORMS"] = args.platform
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        res = {"worker": name, "error": (p.stderr or p.stdout)[-3000:]}
    else:
        res = json.loads(line[-1][len("RESULT "):])
    print(json.dumps(res)[:2000], flush=True)
    return res


def _ratios(rows: list[dict]) -> dict:
    out = {}
    for wl, ours_impl in (("model_fwd_bwd", "eigenkit"), *(("model_fwd_bwd", v[0]) for v in PAIR_VARIANTS.values()),
                          ("spectra", "eigenkit_laplacian_eigs_jit"), ("spectra", "eigenkit_make_graph_batch")):
        o = next((r for r in rows if r.get("workload") == wl and r.get("impl", "").startswith("official")), None)
        m = next((r for r in rows if r.get("workload") == wl and r.get("impl") == ours_impl), None)
        if o is None or m is None or "steady_s" not in o or "steady_s" not in m:
            continue
        r = {"official_over_ours_steady_s": o["steady_s"] / m["steady_s"]}
        if m.get("peak_rss_increase_mb", 0) > 0:
            r["official_over_ours_peak_rss"] = o["peak_rss_increase_mb"] / m["peak_rss_increase_mb"]
        out[f"{wl}/{ours_impl}"] = r
    o = next((r for r in rows if r.get("workload") == "model_fwd_bwd" and r.get("impl", "").startswith("official")
              and "steady_s" in r), None)
    f = next((r for r in rows if r.get("workload") == "rho_mlp_floor" and "steady_s" in r), None)
    if o is not None and f is not None:  # the ratio the node-pair rows could reach if everything but ρ's MLPs were free
        ratio = o["steady_s"] / f["steady_s"]
        out["model_fwd_bwd/official_over_rho_mlp_floor"] = {"official_over_ours_steady_s": ratio}
    return out


def build_parser():
    """The command line (``_common.parser``, ``--threads`` defaulting to all available cores, plus the sizes)."""
    ap = parser(__doc__, out="experiments/benchmarks/results/spe.json", threads=len(os.sched_getaffinity(0)))
    ap.add_argument("--official-src", default=None, help="checkout of Graph-COM/SPE (the folder holding src/)")
    ap.add_argument("--pyg-path", default=None, help="extra sys.path entry holding torch_geometric")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (see the docstring); timings mean nothing")
    ap.add_argument("--check-only", action="store_true", help="run the correctness check, time nothing")
    ap.add_argument("--platform", default="cpu", help="JAX_PLATFORMS of the workers ('' = jax's default)")
    ap.add_argument("--seed", type=int, default=0)
    for k, v in FULL.items():
        ap.add_argument(f"--{k.replace('_', '-')}", dest=k, type=int, default=v)
    ap.add_argument("--worker", choices=WORKERS, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        _PINNED.update(pin_threads(args.threads))  # before JAX's backend (or torch's pool) starts in this worker
        fn = {"check": worker_check, "official_model": worker_official, "official_spectra": worker_official,
              "ab_model": worker_ab, "ab_spectra": worker_ab}.get(args.worker, worker_ours)
        print("RESULT " + json.dumps(fn(args)))
        return 0
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.min_nodes > args.max_nodes or args.min_nodes < 2:
        raise SystemExit(f"need 2 <= --min-nodes <= --max-nodes, got {args.min_nodes}, {args.max_nodes}")
    if args.official_src:
        args.official_src = str(pathlib.Path(args.official_src).resolve())
    threads = pin_threads(args.threads)  # this process runs no JAX; the workers inherit the mask and pin again
    before = machine_info()
    load_before = check_load("before")
    tmp = tempfile.mkdtemp(prefix="bench_spe_")
    args.weights = os.path.join(tmp, "official_state_dict.npz")
    try:
        check = None
        if args.official_src:
            check = _run_worker(args, "check")
            if not check.get("passed"):
                raise SystemExit(f"correctness check failed: {json.dumps(check, indent=2)[:6000]}")
        else:
            args.weights = None
        rows = []
        if not args.check_only:
            names = ["ours_model", *PAIR_VARIANTS, "ours_rho_mlp_floor", "ours_spectra", "ours_make_graph_batch"]
            if args.official_src:
                names += ["official_model", "official_spectra"]
            for name in names:
                rows.append(_run_worker(args, name))
        ab = None
        if args.ab_rounds > 0 and not args.check_only:
            ab = {}
            for name in AB_SIDES:
                res = _run_worker(args, name)
                if "error" in res:
                    raise SystemExit(f"interleaved A/B worker {name} failed:\n{res['error']}")
                ab[res.pop("workload")] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    graphs = molecule_like_graphs(args.n_graphs, args.min_nodes, args.max_nodes, args.seed)
    sizes = {k: getattr(args, k) for k in FULL}
    result = {
        "benchmark": "spe", "command": " ".join(["python -m experiments.benchmarks.spe", *(argv or sys.argv[1:])]),
        "quick": args.quick, "sizes": sizes, "graphs": _graph_stats(graphs), "repeats": args.repeats,
        "seed": args.seed, "dtype": "float32", "machine_before": before,
        "threads": {**threads, "pinned_cores_both_sides": args.threads, "cpu_count": os.cpu_count(),
                    "measured_parallelism": {r["impl"]: r["threads"]["measured_parallelism"] for r in rows
                                             if "threads" in r}},
        "loadavg_before": load_before, "loadavg_after": check_load("after"), "interleaved_ab": ab,
        "official": None if check is None else check.get("official"),
        "check": None if check is None else {k: v for k, v in check.items() if k != "official"},
        "rows": rows, "ratios": _ratios(rows),
        "timed": {"model_fwd_bwd": "train-mode L1 loss + gradient w.r.t. all parameters, one batch",
                  "spectra": "symmetric normalised Laplacian eigenpairs of every graph, D-padded"},
    }
    write_result(result, args.out)
    print(json.dumps(result["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
