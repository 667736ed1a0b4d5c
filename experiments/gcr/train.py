"""GCR vs softmax on Fashion-MNIST with a small CNN (eigenkit.train), plus transferability and variability.

Three measurements, all with the same backbone, optimiser, schedule and step budget for every head:

1. **Accuracy**: 10-class Fashion-MNIST; vector softmax head (``nnx.Linear``) vs GCR heads with subspace dims k
   (``eigenkit.methods.gcr.GrassmannClassifier``, bases trained by ``eigenkit.manifolds.riemannian_sgd``);
   mean ± std of test accuracy over seeds.
2. **Transferability** (the paper's linear-transfer protocol at toy scale): train on classes 0-4 only, freeze the
   backbone, fit a logistic-regression probe on its penultimate features for classes 5-9, report probe test accuracy.
3. **Intra-class variability** (Kornblith et al. 2021, used by GCR §5): on the pre-training classes' test features,
   ``variability = mean within-class cosine distance / mean overall cosine distance`` (= 1 − class-separation R²);
   GCR reports it grows with k.
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

from eigenkit import data, manifolds, train
from eigenkit.methods import gcr
from eigenkit.metrics import intra_class_variability, linear_probe
from eigenkit.nn import SmallCNN
from experiments._contract import Result, SeedSweep, config_enum, markdown_table

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


class Net(nnx.Module):
    """SmallCNN backbone + head: ``k == 0`` vector softmax (Linear), else a GCR head with k-dim subspaces."""

    def __init__(self, config, num_classes: int, k: int, *, rngs: nnx.Rngs):
        self.backbone = SmallCNN(1, (28, 28), channels=tuple(config.channels), features=config.features,
                                 batch_norm=bool(config.batch_norm), final_relu=bool(config.final_relu),
                                 final_batch_norm=bool(config.final_batch_norm), rngs=rngs)
        if k == 0:
            self.head = nnx.Linear(config.features, num_classes, rngs=rngs)
        else:
            self.head = gcr.GrassmannClassifier(config.features, num_classes, k, gamma=config.gcr_gamma, rngs=rngs)

    def features(self, x):
        return self.backbone(x)

    def __call__(self, x):
        return self.head(self.backbone(x))


def _prep(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / 255.0 - FMNIST_MEAN) / FMNIST_STD)[..., None]


def load_task(config, classes: tuple[int, ...], seed: int, n_train: int):
    """Seeded subset of the training images of ``classes`` (labels remapped to 0..len-1) and all their test images."""
    xtr, ytr = data.fashion_mnist("train")
    xte, yte = data.fashion_mnist("test")
    cls = np.asarray(classes)
    remap = np.full(10, -1, np.int32)
    remap[cls] = np.arange(len(cls), dtype=np.int32)
    tr = np.flatnonzero(np.isin(ytr, cls))
    tr = np.random.default_rng([seed, 12345]).permutation(tr)[:n_train]
    te = np.flatnonzero(np.isin(yte, cls))[: config.n_test]
    return _prep(xtr[tr]), remap[ytr[tr]], _prep(xte[te]), remap[yte[te]]


def make_schedule(config, num_steps: int, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up over ``warmup_epochs`` then cosine decay to 0 (``warmup_epochs = 0``: cosine only).

    The official GCR recipes warm up too (RSB / DeiT3 / Swin wrappers); with a normalised-feature head on a small
    backbone the first steps otherwise blow up (see experiments/gcr/README.md, "Pitfall").
    """
    warmup = int(round(float(config.warmup_epochs) * steps_per_epoch))
    if warmup <= 0:
        return optax.cosine_decay_schedule(config.learning_rate, num_steps)
    return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, max(num_steps, warmup + 1), 0.0)


def make_tx(config, k: int, num_steps: int, params, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD-momentum (+ weight decay) on Euclidean leaves; Riemannian SGD on the GCR bases; **one** schedule object
    shared by both groups (as the official optimiser wrappers step one scheduler for all parameter groups)."""
    sched = schedule
    euclid = optax.chain(optax.add_decayed_weights(config.weight_decay),
                         optax.sgd(sched, momentum=config.momentum))
    if k == 0:
        return euclid
    rsgd = manifolds.riemannian_sgd(
        sched, config.momentum,
        momentum_rule=config_enum(manifolds.MomentumRule, config.gcr_momentum_rule, key="gcr_momentum_rule"),
        reorth_every=int(config.gcr_reorth_every), lr_factor=config.gcr_lr_factor,
    )
    return optax.partition({gcr.GRASSMANN_LABEL: rsgd, "euclidean": euclid}, gcr.grassmann_labels(params))


loss_fn, metric_fn = train.classifier_fns()


def extract_features(state, x, mesh, batch_size: int) -> np.ndarray:
    """Frozen penultimate features (backbone output, eval mode), float32 (n, D)."""

    @jax.jit
    def feat(st, xb):
        model = nnx.merge(st.graphdef, st.params, st.rest)
        model.eval()
        return model.features(xb)

    out = []
    for b, valid in train.padded_batches({"x": x}, batch_size, mesh.devices.size):
        out.append(np.asarray(feat(state, train.shard_batch(b["x"], mesh)))[:valid])
    return np.concatenate(out)


def train_one(config, workdir: pathlib.Path, task, k: int, seed: int, mesh, *, phase: str):
    """Train one model of the sweep; returns (state, test accuracy, seconds).

    The checkpoint config is this sub-run's own (``k``, ``seed``, ``phase``; no sweep lists), so extending the sweep
    leaves finished sub-runs resumable.
    """
    xtr, ytr, xte, yte = task
    num_classes = int(ytr.max()) + 1
    model = Net(config, num_classes, k, rngs=nnx.Rngs(seed))
    num_steps = train.steps_per_run(config, len(xtr))
    tx = make_tx(config, k, num_steps, nnx.state(model, nnx.Param),
                 make_schedule(config, num_steps, len(xtr) // int(config.batch_size)))
    sub = train.subrun_config(config, drop=("seeds", "head_dims", "transfer_head_dims"), head_dim=k, seed=seed,
                              phase=phase)
    init_norm = _initial_feature_norm(model, train.epoch_batches({"x": xtr}, int(config.batch_size), seed=seed)(0))
    t0 = time.perf_counter()
    state, test = train.fit_and_evaluate(
        model, tx, loss_fn, train_data={"x": xtr, "y": ytr}, config=sub, workdir=workdir, seed=seed,
        metric_fn=metric_fn, eval_data={"x": xte, "y": yte}, mesh=mesh, desc=f"gcr {phase} {_name(k)} seed {seed}")
    secs = time.perf_counter() - t0
    losses = [r["loss"] for r in _records(workdir) if "loss" in r and r["step"] <= 50]
    dead = dead_unit_fraction(extract_features(state, xte, mesh, int(config.eval_batch_size)))
    diag = {"initial_feature_norm": init_norm, "max_loss_first_50_steps": max(losses) if losses else float("nan"),
            "dead_unit_fraction": dead}
    if k:
        diag["initial_gamma_over_feature_norm"] = float(config.gcr_gamma) / init_norm
    return state, test["accuracy"], secs, diag


def _initial_feature_norm(model, batch) -> float:
    """Mean ‖f‖ of the backbone features of the first training batch at initialisation, in train mode (batch
    statistics), computed on a clone so the model's BatchNorm statistics are untouched."""
    probe = nnx.clone(model)
    probe.train()
    return float(jnp.mean(jnp.linalg.norm(probe.features(jnp.asarray(batch["x"])), axis=-1)))


def dead_unit_fraction(features: np.ndarray) -> float:
    """Fraction of feature units that are zero (dead ReLUs) on every one of ``features``' rows."""
    return float(np.mean(np.max(np.abs(features), axis=0) == 0.0))


def _records(workdir: pathlib.Path) -> list[dict]:
    path = pathlib.Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _name(k: int) -> str:
    return "softmax" if k == 0 else f"gcr_k{k}"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    if config.dataset == "imagenet":  # the paper recipe: ResNet-50-D on ImageFolder JPEGs (experiments/gcr/imagenet.py)
        from experiments.gcr import imagenet

        return imagenet.train_and_evaluate(config, workdir)
    if config.dataset != "fashion_mnist":
        raise ValueError(f"config.dataset must be 'fashion_mnist' or 'imagenet', got {config.dataset!r}")
    workdir = pathlib.Path(workdir)
    mesh = train.make_mesh()
    heads = [0, *(int(k) for k in config.head_dims)]
    sweep, diag = SeedSweep(), SeedSweep()
    t_start = time.perf_counter()

    def add_diag(phase: str, k: int, seed: int, values: dict) -> None:
        for key, v in values.items():
            diag.add(f"{phase}_{_name(k)}_{key}", v, seed=seed)

    def add(name: str, value: float, seed: int, k: int, **kw) -> None:
        sweep.add(name, value, seed=seed, baseline=(k == 0), **kw)

    # 1. accuracy on all 10 classes
    for seed in config.seeds:
        task = load_task(config, tuple(range(10)), seed, int(config.n_train))
        for k in heads:
            _, acc, secs, d = train_one(config, workdir / f"acc_{_name(k)}_s{seed}", task, k, seed, mesh, phase="acc")
            add_diag("acc", k, seed, d)
            add(f"{_name(k)}_test_accuracy", acc, seed, k, higher_is_better=True)
            add(f"{_name(k)}_train_seconds", secs, seed, k, higher_is_better=False, unit="s")

    # 2./3. transfer: pre-train on classes 0-4, probe 5-9; variability on the pre-training classes
    for seed in config.seeds:
        task = load_task(config, (0, 1, 2, 3, 4), seed, int(config.n_train))
        probe_tr = load_task(config, (5, 6, 7, 8, 9), seed + 1000, int(config.n_probe_train))
        for k in [0, *(int(k) for k in config.transfer_head_dims)]:
            state, acc, _, d = train_one(config, workdir / f"transfer_{_name(k)}_s{seed}", task, k, seed, mesh,
                                         phase="transfer")
            add_diag("transfer", k, seed, d)
            f_src = extract_features(state, task[2], mesh, 512)
            ftr = extract_features(state, probe_tr[0], mesh, 512)
            fte = extract_features(state, probe_tr[2], mesh, 512)
            add(f"transfer_{_name(k)}_source_accuracy", acc, seed, k, higher_is_better=True)
            add(f"transfer_{_name(k)}_probe_accuracy", linear_probe(ftr, probe_tr[1], fte, probe_tr[3], seed=seed),
                seed, k, higher_is_better=True)
            add(f"transfer_{_name(k)}_variability", intra_class_variability(f_src, task[3]), seed, k)

    metrics = sweep.metrics()
    workdir.mkdir(parents=True, exist_ok=True)
    per_seed = {m.name: list(m.values) for m in metrics}
    (workdir / "gcr_results.json").write_text(json.dumps({"per_seed": per_seed, "seeds": list(config.seeds)},
                                                         indent=2))
    timing = [m for m in metrics if m.name.endswith("_train_seconds")]
    headline = [m for m in metrics if not m.name.endswith("_train_seconds")]
    extras = {"total_seconds": time.perf_counter() - t_start, **{m.name + "_mean": m.mean for m in timing}}
    # training-health diagnostics of every head (a regression of the early blow-up shows up here)
    extras["diagnostics"] = {m.name: {"mean": m.mean, "values": list(m.values), "seeds": list(m.seeds)}
                             for m in diag.metrics()}
    keys = ("initial_feature_norm", "initial_gamma_over_feature_norm", "max_loss_first_50_steps", "dead_unit_fraction")
    rows = []
    for phase, ks in (("acc", heads), ("transfer", [0, *(int(k) for k in config.transfer_head_dims)])):
        for k in ks:
            cells = []
            for key in keys:
                d = extras["diagnostics"].get(f"{phase}_{_name(k)}_{key}")
                cells.append("—" if d is None else f"{d['mean']:.3g}")
            rows.append([phase, _name(k), *cells])
    table = markdown_table(["phase", "head", "initial ‖f‖", "initial γ/‖f‖", "max loss, steps 1-50",
                            "dead feature units at the end"], rows)
    return Result(headline, extras=extras, tables={"training-health diagnostics (mean over seeds)": table},
                  artifacts={"per_seed": str(workdir / "gcr_results.json")})
