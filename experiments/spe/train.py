"""MAE table: the same GINE backbone with no PE, LapPE, SignNet and SPE on penalised logP: ZINC-12k from the user's
copy (``config.dataset = "zinc"``, the paper's task) or a ZINC-style MOSES sample built offline (``"moses"``).

Per method and seed: a fresh model, the official optimiser (Adam with *coupled* L2 weight decay on non-bias
parameters, linear warm-up then linear decay to 0, L1 loss), validation every ``eval_every`` steps and test MAE
reported at the best validation MAE (official model selection). Spectra are computed once per split with
``eigenkit.graph.laplacian_eigs`` (symmetric normalised Laplacian, ``k`` smallest pairs, trivial pair included).
With ``rho_layout = "pairs"`` SPE's ρ and SignNet's φ run on the real node pairs of each batch
(``spe.with_pair_index``), with row and degree budgets covering every batch of the run (:func:`pair_budgets`), so
one train step and one eval step are compiled per method.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import train
from eigenkit.data import ATOM_TYPES, BOND_TYPES, ZINC_ATOM_TYPES, ZINC_BOND_TYPES, moses_penalized_logp, zinc
from eigenkit.methods import spe
from eigenkit.nn import Pooling
from experiments._contract import Result, SeedSweep, config_enum, markdown_table

METHODS = {"none": spe.PEKind.NONE, "lappe": spe.PEKind.LAPPE, "spe": spe.PEKind.SPE, "signnet": spe.PEKind.SIGNNET}
OURS = "spe"  # the method of the paper; the other PEs of the table are its baselines
#: ``config.dataset`` → (atom vocabulary, bond vocabulary): the default ``n_node_types`` / ``n_edge_types``.
VOCABULARIES = {"moses": (ATOM_TYPES, BOND_TYPES), "zinc": (ZINC_ATOM_TYPES, ZINC_BOND_TYPES)}


def official_optimizer(lr: float, weight_decay: float, warmup_steps: int, total_steps: int
                       ) -> optax.GradientTransformation:
    """torch ``Adam(param_groups, lr, weight_decay)`` + ``LambdaLR`` of Graph-COM/SPE ``zinc/trainer.py``.

    torch Adam's ``weight_decay`` is **coupled** L2 (``g ← g + wd·θ`` before the moment estimates), i.e.
    ``add_decayed_weights`` *before* ``scale_by_adam`` — not AdamW. As in the official parameter groups, parameters
    named "bias" get no decay (here: every ``bias`` leaf and the stacked φ biases ``bs``); everything else, BatchNorm
    scales included, is decayed. Schedule: ``lr · s/warmup`` for ``s < warmup``, then linear to 0 at ``total_steps``.
    """
    def not_bias(params):
        def keep(path, _):
            parts = train.param_path(path).split("/")
            return "bias" not in parts and "bs" not in parts

        return jax.tree_util.tree_map_with_path(keep, params)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm = step / max(1, warmup_steps)
        decay = jnp.maximum(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
        return lr * jnp.where(step < warmup_steps, warm, decay)

    return optax.chain(optax.add_decayed_weights(weight_decay, mask=not_bias), optax.scale_by_adam(),
                       optax.scale_by_schedule(schedule), optax.scale(-1.0))


def _dataset(config) -> str:
    name = config.get("dataset", "moses")
    if name not in VOCABULARIES:
        raise ValueError(f"config.dataset must be one of {tuple(VOCABULARIES)}, got {name!r}")
    return name


def load_splits(config) -> dict:
    """The train / val / test :class:`~eigenkit.data.MoleculeGraphs` of ``config.dataset``: ``"moses"`` (the seeded
    ``n_train`` / ``n_val`` / ``n_test`` MOSES sample) or ``"zinc"`` (ZINC from ``config.data_dir`` or
    ``$EIGENKIT_ZINC``; the 12k subset unless ``config.zinc_subset`` is False)."""
    if _dataset(config) == "zinc":
        root = config.get("data_dir", "") or None
        return {s: zinc(s, root=root, subset=config.get("zinc_subset", True)) for s in ("train", "val", "test")}
    sizes = dict(n_train=config.n_train, n_val=config.n_val, n_test=config.n_test, seed=config.data_seed)
    return {s: moses_penalized_logp(s, **sizes) for s in ("train", "val", "test")}


def load_data(config):
    """Graph batches (with spectra) of the train / val / test splits, and the padding budgets used.

    ``config.max_nodes`` is the node padding budget (0: the largest molecule of the three splits); ``num_eigs`` the
    eigen axis width ``k`` (0: ``max_nodes``, the full spectrum)."""
    splits = load_splits(config)
    cut = config.get("ood_max_train_nodes", 0)
    if cut:  # size shift: train / validate on small molecules, test on the larger ones
        splits = {s: m.subset(np.flatnonzero(m.n_node <= cut if s != "test" else m.n_node > cut))
                  for s, m in splits.items()}
    max_nodes = config.max_nodes or int(max(int(m.n_node.max()) for m in splits.values()))
    max_edges = int(max(int(m.n_edge.max()) for m in splits.values()))
    max_edges = -(-max_edges // 8) * 8
    k = config.num_eigs if config.num_eigs else max_nodes
    out = {}
    for name, mols in splits.items():
        out[name] = spe.make_graph_batch(mols.to_jraph(), max_nodes=max_nodes, max_edges=max_edges, k=k)
    return out, dict(max_nodes=max_nodes, max_edges=max_edges, k=k)


def vocabulary_sizes(config) -> tuple[int, int]:
    """``(n_node_types, n_edge_types)``: ``config.n_node_types`` / ``n_edge_types`` when set (> 0), else the sizes of
    ``config.dataset``'s vocabularies (MOSES 14 / 3; ZINC 28 / 3, the official ``n_node_types`` / ``n_edge_types``)."""
    atoms, bonds = VOCABULARIES[_dataset(config)]
    return config.get("n_node_types", 0) or len(atoms), config.get("n_edge_types", 0) or len(bonds)


def build_model(config, method: str, k: int, seed: int):
    n_node_types, n_edge_types = vocabulary_sizes(config)
    return spe.PEGraphRegressor(
        METHODS[method], n_node_types=n_node_types, n_edge_types=n_edge_types, n_eigs=k,
        hidden=config.hidden, n_layers=config.n_layers, n_mlp_layers=config.n_mlp_layers,
        pooling=config_enum(Pooling, config.pooling, key="pooling"), pe_dims=config.pe_dims, n_phi=config.n_phi,
        phi_layers=config.phi_layers,
        phi_hidden=config.phi_hidden, rho_layers=config.rho_layers, rho_hidden=config.rho_hidden,
        bn_mode=config_enum(spe.BatchNormMode, config.bn_mode, key="bn_mode"), remat=config.get("remat", False),
        rngs=nnx.Rngs(seed))


def loss_fn(model, batch, key):
    pred = model(batch, key=key)
    loss = jnp.mean(jnp.abs(pred - batch.graphs.globals))
    return loss, {"mae": loss}


def metric_fn(model, batch):
    pred = model(batch)
    err = jnp.abs(pred - batch.graphs.globals)
    return {"abs_err": err}


def _eval_indices(n: int, batch_size: int, n_dev: int):
    """``(index, real)`` per eval batch: the last batch is padded with repeats (``real`` = its true size)."""
    bs = max(n_dev, (batch_size // n_dev) * n_dev)
    for i in range(0, n, bs):
        idx = np.arange(i, min(i + bs, n))
        yield np.concatenate([idx, np.full(bs - len(idx), idx[-1])]), len(idx)


def _train_indices(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
    """The graphs of training step ``step``: a seeded permutation per epoch, cut into batches (the rest dropped)."""
    epoch, i = divmod(step, n // batch_size)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[i * batch_size:(i + 1) * batch_size]


def _n_node(data: spe.GraphBatch) -> np.ndarray:
    return np.asarray(data.node_mask).reshape(data.num_graphs, -1).sum(1)


def pair_budgets(config, data, mesh) -> dict:
    """Static shapes of SPE's node-pair layout for the whole run (one compiled train step and one eval step):
    the largest ``Σ n_b²`` over every training batch of every seed, and over the eval batches, and the largest
    in- or out-degree of any node (``degree``)."""
    deg = 0
    for d in data.values():
        em = np.asarray(d.edge_mask)
        for ends in (d.graphs.receivers, d.graphs.senders):
            counts = np.bincount(np.asarray(ends)[em], minlength=1)
            deg = max(deg, int(counts.max()))
    tr = data["train"]
    num_steps = train.steps_per_run(config, tr.num_graphs)
    draws = np.stack([_train_indices(seed, s, tr.num_graphs, config.batch_size) for seed in config.seeds
                      for s in range(num_steps)])
    granule = 64 * mesh.devices.size
    rows_train, _ = spe.pair_budgets(_n_node(tr), deg, config.batch_size, draws=draws, granule=granule)
    rows_eval = 0
    for split in ("val", "test"):
        idx = np.stack([i for i, _ in _eval_indices(data[split].num_graphs, config.eval_batch_size,
                                                    mesh.devices.size)])
        rows_eval = max(rows_eval, spe.pair_budgets(_n_node(data[split]), deg, idx.shape[1], draws=idx,
                                                    granule=granule)[0])
    return {"rows_train": rows_train, "rows_eval": rows_eval, "degree": deg}


def _with_pairs(batch, pairs: dict | None, rows_key: str):
    if pairs is None:
        return batch
    return spe.with_pair_index(batch, row_budget=pairs[rows_key], degree_budget=pairs["degree"])


def evaluate(state, eval_step, data: spe.GraphBatch, mesh, batch_size: int, pairs: dict | None = None) -> float:
    """Exact MAE over all graphs; the last batch is padded with repeats whose errors are dropped."""
    errs = []
    for idx, real in _eval_indices(data.num_graphs, batch_size, mesh.devices.size):
        batch = _with_pairs(spe.take_graph_batch(data, idx), pairs, "rows_eval")
        m = eval_step(state, train.shard_batch(batch, mesh))
        errs.append(np.asarray(m["abs_err"])[:real])
    return float(np.mean(np.concatenate(errs)))


_STEPS: dict = {}


def _steps(method: str, mesh):
    """One jitted train / eval step per method, shared by its seeds (same graphdef => one compilation)."""
    if method not in _STEPS:
        _STEPS[method] = (train.make_train_step(loss_fn, mesh=mesh), train.make_eval_step(metric_fn, mesh=mesh))
    return _STEPS[method]


def run_one(config, method: str, seed: int, data, budget, mesh, workdir: pathlib.Path,
            pairs: dict | None = None) -> dict[str, float]:
    """One method and seed; ``pairs`` (budgets from :func:`pair_budgets`): SPE's ρ / SignNet's φ on node-pair
    rows."""
    tr = data["train"]
    bs = config.batch_size
    pairs = pairs if METHODS[method] in (spe.PEKind.SPE, spe.PEKind.SIGNNET) else None
    num_steps = train.steps_per_run(config, tr.num_graphs)
    model = build_model(config, method, budget["k"], seed)
    tx = official_optimizer(config.learning_rate, config.weight_decay, config.warmup_steps, num_steps)
    state = train.TrainState.create(model, tx, mesh=mesh)
    step, eval_step = _steps(method, mesh)

    def make(idx):
        return _with_pairs(spe.take_graph_batch(tr, idx), pairs, "rows_train")

    if str(config.get("input_pipeline", "host")) == "grain":  # Grain samples the graph indices; position checkpointed
        index = train.grain_batches(train.ArraySource({"index": np.arange(tr.num_graphs)}), bs, seed=seed,
                                    worker_count=int(config.get("grain_workers", 0)))
        batches = train.MapBatches(index, lambda b: make(b["index"]))
    else:
        def batches(s: int):
            return make(_train_indices(seed, s, tr.num_graphs, bs))

    run_dir = workdir / f"{method}_seed{seed}"
    best = _best_logged(run_dir)  # a resumed run keeps the best validation epoch of its earlier part

    def eval_fn(st):
        val = evaluate(st, eval_step, data["val"], mesh, config.eval_batch_size, pairs)
        test = evaluate(st, eval_step, data["test"], mesh, config.eval_batch_size, pairs)
        if val < best["val"]:
            best.update(val=val, test=test)
        return {"val_mae": val, "test_mae": test}

    t0 = time.perf_counter()
    sub = train.subrun_config(config, drop=("methods", "seeds"), method=method, seed=seed)
    state, _ = train.fit(state, step, batches=batches, num_steps=num_steps, workdir=run_dir,
                         config=sub, mesh=mesh, seed=seed, eval_fn=eval_fn, eval_every=config.eval_every,
                         checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                         show_progress=config.show_progress, desc=f"spe {method} seed {seed}")
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
    return {"test_mae": best["test"], "val_mae": best["val"], "time_s": time.perf_counter() - t0,
            "params": float(n_params)}


def _best_logged(run_dir: pathlib.Path) -> dict[str, float]:
    """``{"val", "test"}`` MAE at the best validation MAE among the eval records of ``run_dir/metrics.jsonl`` (an
    interrupted run's earlier part; ``inf`` when there are none)."""
    best = {"val": np.inf, "test": np.inf}
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
            if "eval/val_mae" in rec and "eval/test_mae" in rec and rec["eval/val_mae"] < best["val"]:
                best = {"val": float(rec["eval/val_mae"]), "test": float(rec["eval/test_mae"])}
    return best


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """MAE table none / LapPE / SignNet / SPE (mean ± std over seeds); writes ``mae_table.md`` / ``mae_table.json``."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = train.make_mesh()
    _STEPS.clear()
    data, budget = load_data(config)
    layout = config.get("rho_layout", "dense")
    if layout not in ("dense", "pairs"):
        raise ValueError(f"config.rho_layout must be 'dense' or 'pairs', got {layout!r}")
    pairs = None
    if layout == "pairs" and {"spe", "signnet"} & set(config.methods):
        if config.bn_mode != "masked":
            raise ValueError("config.rho_layout='pairs' needs config.bn_mode='masked' (the pair rows carry the "
                             f"masked statistics), got {config.bn_mode!r}")
        pairs = pair_budgets(config, data, mesh)
        budget["pairs"] = pairs
    sweep = SeedSweep()
    runs: dict[str, list[dict[str, float]]] = {}
    for method in config.methods:
        for seed in config.seeds:
            r = run_one(config, method, seed, data, budget, mesh, workdir, pairs)
            runs.setdefault(method, []).append(r)
            sweep.add(f"{method}_test_mae", r["test_mae"], seed=seed, baseline=method != OURS, higher_is_better=False)
    rows = []
    for method, rs in runs.items():
        test = np.array([r["test_mae"] for r in rs])
        val = np.array([r["val_mae"] for r in rs])
        rows.append([method, f"{test.mean():.4f} ± {test.std():.4f}", f"{val.mean():.4f}", int(rs[0]["params"]),
                     f"{np.mean([r['time_s'] for r in rs]):.1f}"])
    table = markdown_table(["PE", "test MAE (mean ± std)", "val MAE", "params", "time / run (s)"], rows)
    sizes = "/".join(str(data[s].num_graphs) for s in ("train", "val", "test"))
    ood = config.get("ood_max_train_nodes", 0)
    shift = f" (size shift: train/val n <= {ood}, test n > {ood})" if ood else ""
    name = ("ZINC" + ("-12k" if config.get("zinc_subset", True) else " (full)") + " penalised logP (normalised)"
            if _dataset(config) == "zinc" else "MOSES penalised logP")
    header = (f"{name}, {sizes} molecules{shift}, seeds {list(config.seeds)}, "
              f"{config.epochs} epochs, budgets {budget}, test MAE at best val MAE")
    (workdir / "mae_table.md").write_text(header + ".\n\n" + table + "\n")
    (workdir / "mae_table.json").write_text(json.dumps({"config": config.to_dict(), "budget": budget,
                                                        "runs": runs}, indent=2, default=str))
    print(header + "\n" + table, flush=True)
    extras = {"val_mae_" + m: float(np.mean([r["val_mae"] for r in rs])) for m, rs in runs.items()}
    extras["budget"] = budget
    return Result(sweep.metrics(), extras=extras, tables={header: table},
                  artifacts={"table": str(workdir / "mae_table.md")})
