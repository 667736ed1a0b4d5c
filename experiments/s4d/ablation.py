"""S4D initialisation × discretisation ablation (S4D paper Table 3-style) on mnist1d, sized for 2 CPU cores.

    python -m experiments run s4d.ablation --preset cpu      (a registered study; presets smoke, cpu)

Task: mnist1d (Greydanus 2020; ``pip install mnist1d==0.0.2.post1``), 4000 / 1000 procedurally generated 1-D
digit signals of length 40, generated offline with ``make_dataset`` (never ``get_dataset``, which downloads), fed one
sample per step (L = 40, d_input = 1). Model: 2 × H = 32, N = 32 S4D blocks (GLU, LayerNorm, post-norm),
mean pooling; AdamW 1e-2 (wd 0.01) with the SSM parameters at 1e-3, wd 0; cosine. For each of S4D-Lin / -Inv / -LegS
/ -Real × ZOH / bilinear and each seed (which changes dt, C, the other weights and the batch order) the test accuracy
after a fixed budget is reported as mean ± std over seeds (std with ddof 0, as every table of the project). Writes
``ablation.json`` and ``ablation.md`` to the workdir.

Design for speed: one compiled train step per discretisation — the initialisation only changes parameter *values*,
so all inits and seeds reuse the same jitted function.
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

from eigenkit import ssm, train
from eigenkit.methods.s4d import Norm, S4DModel, s4d_optimizer
from experiments._contract import Result, SeedSweep, markdown_table

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    """cpu: 3 seeds × 500 steps × 8 cells (~2 min on 2 CPU cores); smoke: 2 seeds × 3 steps of a tiny model."""
    c = ml_collections.ConfigDict(dict(
        description="S4D init {Lin, Inv, LegS, Real} x {ZOH, bilinear} ablation on mnist1d, 3 seeds",
        expected_runtime="~2-3 min on 2 CPU cores (126 s measured)", seeds=(0, 1, 2), num_steps=500, batch_size=100,
        d_model=32, d_state=32, n_layers=2, data_seed=42, learning_rate=1e-2, ssm_lr=1e-3, weight_decay=1e-2,
    ))
    if preset == "smoke":
        c.update(dict(description="S4D ablation smoke: 2 seeds x 3 steps, H=4", expected_runtime="~40 s",
                      seeds=(0, 1), num_steps=3, batch_size=50, d_model=4, d_state=4, n_layers=1, data_seed=0))
    elif preset != "cpu":
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return c


def load_mnist1d(seed: int):
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover
        raise ImportError("the ablation needs mnist1d: pip install mnist1d==0.0.2.post1") from e
    args = get_dataset_args()
    args.seed = seed
    d = make_dataset(args)  # offline generator; get_dataset would download
    mu, sd = d["x"].mean(), d["x"].std()

    def prep(x):
        return ((x - mu) / sd).astype(np.float32)[..., None]

    return prep(d["x"]), d["y"].astype(np.int32), prep(d["x_test"]), d["y_test"].astype(np.int32)


def loss_fn(model, batch, key):
    logits = model(batch["x"], rngs=nnx.Rngs(dropout=key))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    return loss, {}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    seeds = tuple(int(s) for s in config.seeds)
    steps, batch_size = int(config.num_steps), int(config.batch_size)
    xtr, ytr, xte, yte = load_mnist1d(int(config.data_seed))
    sweep = SeedSweep()
    t_start = time.perf_counter()
    for disc in ssm.Discretization:
        step_fn = train.make_train_step(loss_fn, donate=False)
        predict = nnx.jit(lambda m, x: jnp.argmax(m(x), -1))
        tx = None
        for init in ssm.Init:
            for seed in seeds:
                model = S4DModel(1, 10, d_model=config.d_model, d_state=config.d_state, n_layers=config.n_layers,
                                 dropout=0.0, norm=Norm.LAYER, init=init, discretization=disc, rngs=nnx.Rngs(seed))
                if tx is None:  # one optimiser object per discretisation, so the jitted step is reused
                    tx = s4d_optimizer(nnx.state(model, nnx.Param), lr=config.learning_rate,
                                       weight_decay=config.weight_decay, ssm_lr=config.ssm_lr, total_steps=steps,
                                       warmup_steps=steps // 20)
                state = train.TrainState.create(model, tx)
                rng = np.random.default_rng(seed)
                key = jax.random.key(seed)
                per_epoch = len(xtr) // batch_size
                perm = rng.permutation(len(xtr))
                for s in train.progress(range(steps), total=steps, desc=f"s4d.ablation {init.name} {disc.name} "
                                        f"seed {seed}"):
                    i = s % per_epoch
                    if i == 0 and s > 0:
                        perm = rng.permutation(len(xtr))
                    idx = perm[i * batch_size:(i + 1) * batch_size]
                    state, _ = step_fn(state, {"x": xtr[idx], "y": ytr[idx]}, jax.random.fold_in(key, s))
                pred = np.asarray(predict(state.model(), xte))
                sweep.add(_cell(init, disc), float(np.mean(pred == yte)), seed=seed, higher_is_better=True)
    metrics = sweep.metrics()
    wall = time.perf_counter() - t_start
    rows = []
    for init in ssm.Init:
        cells = []
        for d in ssm.Discretization:
            m = next(m for m in metrics if m.name == _cell(init, d))
            cells.append(f"{m.mean * 100:.1f} ± {m.std * 100 if m.std is not None else 0.0:.1f}")
        name = "LegS" if init is ssm.Init.LEGS else init.name.capitalize()
        rows.append([f"S4D-{name}", *cells])
    title = (f"S4D ablation on mnist1d (L=40, 4000 train / 1000 test): {config.n_layers} x H={config.d_model}, "
             f"N={config.d_state}, {steps} steps, test accuracy % mean ± std (ddof 0) over seeds {list(seeds)}")
    table = markdown_table(["init", "ZOH", "bilinear"], rows)
    wd = pathlib.Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "ablation.json").write_text(json.dumps({"metrics": [m.to_json() for m in metrics], "wall_time_s": wall},
                                                 indent=2))
    (wd / "ablation.md").write_text(title + "\n\n" + table + "\n")
    print(title + "\n" + table, flush=True)
    return Result(metrics, extras={"wall_time_s": wall}, tables={title: table},
                  artifacts={"table": str(wd / "ablation.md")})


def _cell(init, disc) -> str:
    return f"{init.name.lower()}_{disc.name.lower()}_test_accuracy"
