"""S4D initialisation × discretisation ablation (S4D paper Table 3-style) on mnist1d, sized for 2 CPU cores.

    python -m experiments.s4d.ablation --workdir DIR [--seeds 3] [--steps 400]

Task: mnist1d (Greydanus 2020; ``pip install mnist1d==0.0.2.post1``), 4000 / 1000 procedurally generated 1-D
digit signals of length 40, generated offline with ``make_dataset`` (never ``get_dataset``, which downloads), fed one
sample per step (L = 40, d_input = 1). Model: 2 × H = 32, N = 32 S4D blocks (GLU, LayerNorm, post-norm),
mean pooling; AdamW 1e-2 (wd 0.01) with the SSM parameters at 1e-3, wd 0; cosine. For each of S4D-Lin / -Inv / -LegS
/ -Real × ZOH / bilinear and each seed (which changes dt, C, the other weights and the batch order) the test accuracy
after a fixed budget is reported as mean ± std over seeds. Writes ``ablation.json`` and ``ablation.md`` to the workdir.

Design for speed: one compiled train step per discretisation — the initialisation only changes parameter *values*,
so all inits and seeds reuse the same jitted function.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from flax import nnx

from eigenkit import ssm, train
from eigenkit.methods.s4d import Norm, S4DModel, s4d_optimizer

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "output directory (ablation.json, ablation.md)")
flags.DEFINE_integer("seeds", 3, "seeds per cell")
flags.DEFINE_integer("steps", 400, "optimiser steps per run")
flags.DEFINE_integer("batch_size", 100, "batch size")
flags.DEFINE_integer("d_model", 32, "H")
flags.DEFINE_integer("d_state", 32, "N")
flags.DEFINE_integer("n_layers", 2, "number of S4D blocks")
flags.DEFINE_integer("data_seed", 42, "mnist1d generator seed")


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


def run_ablation(workdir: str, *, seeds: int, steps: int, batch_size: int, d_model: int, d_state: int,
                 n_layers: int, data_seed: int) -> dict:
    xtr, ytr, xte, yte = load_mnist1d(data_seed)
    results: dict = {}
    t_start = time.perf_counter()
    for disc in ssm.Discretization:
        step_fn = train.make_train_step(loss_fn, donate=False)
        predict = nnx.jit(lambda m, x: jnp.argmax(m(x), -1))
        tx = None
        for init in ssm.Init:
            accs = []
            for seed in range(seeds):
                model = S4DModel(1, 10, d_model=d_model, d_state=d_state, n_layers=n_layers, dropout=0.0,
                                 norm=Norm.LAYER, init=init, discretization=disc, rngs=nnx.Rngs(seed))
                if tx is None:  # one optimiser object per discretisation, so the jitted step is reused
                    tx = s4d_optimizer(nnx.state(model, nnx.Param), lr=1e-2, weight_decay=1e-2, ssm_lr=1e-3,
                                       total_steps=steps, warmup_steps=steps // 20)
                state = train.TrainState.create(model, tx)
                rng = np.random.default_rng(seed)
                key = jax.random.key(seed)
                per_epoch = len(xtr) // batch_size
                perm = rng.permutation(len(xtr))
                for s in range(steps):
                    i = s % per_epoch
                    if i == 0 and s > 0:
                        perm = rng.permutation(len(xtr))
                    idx = perm[i * batch_size:(i + 1) * batch_size]
                    state, _ = step_fn(state, {"x": xtr[idx], "y": ytr[idx]}, jax.random.fold_in(key, s))
                pred = np.asarray(predict(state.model(), xte))
                accs.append(float(np.mean(pred == yte)))
            results[f"{init.name}/{disc.name}"] = {
                "init": init.name, "discretization": disc.name, "accs": accs,
                "mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            }
            r = results[f"{init.name}/{disc.name}"]
            print(f"{init.name:5s} {disc.name:8s} acc {r['mean']:.4f} ± {r['std']:.4f}"
                  f"  ({time.perf_counter() - t_start:.0f} s)", flush=True)
    meta = {"task": "mnist1d (L=40, 4000 train / 1000 test)", "seeds": seeds, "steps": steps,
            "batch_size": batch_size, "d_model": d_model, "d_state": d_state, "n_layers": n_layers,
            "wall_time_s": time.perf_counter() - t_start}
    out = {"meta": meta, "results": results}
    wd = pathlib.Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "ablation.json").write_text(json.dumps(out, indent=2))
    lines = [f"S4D ablation on {meta['task']}: {n_layers} x H={d_model}, N={d_state}, {steps} steps, "
             f"test accuracy mean ± std over {seeds} seeds (wall {meta['wall_time_s']:.0f} s)", "",
             "| init | ZOH | bilinear |", "|---|---|---|"]
    for init in ssm.Init:
        cells = []
        for d in ssm.Discretization:
            r = results[f"{init.name}/{d.name}"]
            cells.append(f"{r['mean'] * 100:.1f} ± {r['std'] * 100:.1f}")
        name = "LegS" if init is ssm.Init.LEGS else init.name.capitalize()
        lines.append(f"| S4D-{name} | " + " | ".join(cells) + " |")
    (wd / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


def main(argv):
    del argv
    if FLAGS.workdir is None:
        raise app.UsageError("--workdir is required")
    run_ablation(FLAGS.workdir, seeds=FLAGS.seeds, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
                 d_model=FLAGS.d_model, d_state=FLAGS.d_state, n_layers=FLAGS.n_layers, data_seed=FLAGS.data_seed)


if __name__ == "__main__":
    app.run(main)
