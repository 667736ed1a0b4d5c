"""Train-step throughput and compile time on 1 device vs an 8-device (fake CPU) mesh.

    python -m experiments.benchmarks.train_step --out results/bench_train_step.json [--steps 200] \
        [--devices fake8|all] [--threads 2] [--ab-rounds R]
    python -m experiments.benchmarks.train_step --threads 1 --ab-rounds 10 \
        --out /tmp/bench_train_step_1thread.json   # the single-thread control, with the interleaved A/B
    python -m experiments.benchmarks.train_step --steps 5 --batch-size 64 --repeats 2 \
        --out /tmp/bench_train_step_small.json   # checks it runs; timings meaningless

Checks first that both meshes compute the same step (loss and parameters), then reports compile time and
steady-state time per step apart (median over ``--repeats`` timed windows, ``block_until_ready``), and the ratio.
On a CPU the 8 "devices" share the same cores, so the ratio measures the partitioning overhead, not a speed-up;
on a TPU/GPU host run it with the real devices (``--devices all``). ``--devices fake8`` (the default) asks JAX for 8
CPU devices (``jax_num_cpu_devices``, before its backend starts). ``--threads N`` pins the process (every fake
device shares these cores) to N cores with ``_common.pin_threads`` before that; ``threads`` in the JSON holds its
report and the measured CPU/wall ratio of a window on each mesh. ``--ab-rounds R`` (> 0) also times one window of
``--steps`` steps on each mesh interleaved round by round, R rounds (``interleaved_ab``, ratio
``ab_ratio_<n>_devices_over_one_device_median``).
"""

from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np
import optax
from flax import nnx

from eigenkit import train
from experiments.benchmarks._common import (
    check_load,
    interleaved_ab,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)
from experiments.digits_mlp import train as digits  # public names: the model, data and loss
from experiments.digits_mlp.configs import cpu

FAKE_DEVICES = 8


def bench(devices, config, steps: int, repeats: int):
    """``(row, run)``: compile time, steady-state time per step, first loss and final parameters on a mesh over
    ``devices``; ``run`` times nothing and runs one window of ``steps`` steps (blocks until done)."""
    mesh = train.make_mesh(devices)
    xtr, ytr, _, _ = digits.load_split(config)
    batches = train.epoch_batches({"x": xtr, "y": ytr}, config.batch_size, seed=config.seed)
    model = digits.MLP(config.hidden, config.dropout, rngs=nnx.Rngs(config.seed))
    state = train.TrainState.create(model, optax.sgd(0.05, momentum=0.9), mesh=mesh)
    step = train.make_train_step(digits.loss_fn, mesh=mesh, donate=False)
    host = [batches(i) for i in range(steps)]
    dev_batches = [train.shard_batch(b, mesh) for b in host]
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = step.lower(state, dev_batches[0], key).compile()
    compile_s = time.perf_counter() - t0
    s, m = compiled(state, dev_batches[0], key)
    jax.block_until_ready(s)
    first_loss = float(m["loss"])

    def window():
        # Each step is waited for: with many 8-device steps in flight on a 2-core host, XLA:CPU's all-reduce
        # rendezvous deadlocks ("Expected 8 threads to join the rendezvous, but only 7 of them arrived"; jax 0.10.2,
        # the script before this change as well). A training loop that reads its metrics syncs the same way.
        s = state
        for b in dev_batches:
            s, _ = compiled(s, b, key)
            jax.block_until_ready(s)
        return s

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = window()
        times.append((time.perf_counter() - t0) / steps)
    per_step = float(np.median(times))
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(s.params))]
    return {"devices": len(devices), "compile_s": compile_s, "step_s": per_step, "steps_per_s": 1.0 / per_step,
            "examples_per_s": config.batch_size / per_step, "first_loss": first_loss, "_params": leaves}, window


def build_parser():
    """The command line (``_common.parser`` plus steps, batch size and devices)."""
    p = parser(__doc__, out="results/bench_train_step.json")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--devices", default="fake8", choices=["fake8", "all"],
                   help=f"fake8 ({FAKE_DEVICES} fake CPU devices) or all (the real devices)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)  # before JAX's backend starts: XLA sizes its pool from the affinity
    if args.devices == "fake8":
        jax.config.update("jax_num_cpu_devices", FAKE_DEVICES)  # also before the backend starts
    load_before = check_load("before")
    config = cpu.get_config()
    config.batch_size = args.batch_size
    n = jax.device_count()
    one, run_one = bench(jax.devices()[:1], config, args.steps, args.repeats)
    many, run_many = bench(jax.devices(), config, args.steps, args.repeats)
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(one.pop("_params"), many.pop("_params")))
    if abs(one["first_loss"] - many["first_loss"]) > 1e-4 * abs(one["first_loss"]) or max_diff > 1e-3:
        raise SystemExit(f"correctness check failed: loss {one['first_loss']} vs {many['first_loss']}, "
                         f"max parameter difference {max_diff}")
    threads["measured_parallelism"] = {"one_device": measured_parallelism(run_one, 1),
                                       f"{n}_devices": measured_parallelism(run_many, 1)}
    ab = None
    if args.ab_rounds > 0:
        ab = interleaved_ab({"one_device": run_one, f"{n}_devices": run_many}, args.ab_rounds,
                            [(f"{n}_devices", "one_device")])
        ab["window_steps"] = args.steps
    result = {
        "benchmark": "train_step", "model": "digits MLP (BatchNorm, dropout)", "batch_size": args.batch_size,
        "steps": args.steps, "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(), "jax": jax.__version__, "threads": threads,
        "correctness": {"first_loss_1dev": one["first_loss"], "first_loss_ndev": many["first_loss"],
                        "max_param_diff_after_run": max_diff},
        "one_device": one, f"{n}_devices": many,
        "ratio_step_time_ndev_over_1dev": many["step_s"] / one["step_s"],
        "ratio_compile_ndev_over_1dev": many["compile_s"] / one["compile_s"],
        "interleaved_ab": ab, "loadavg_before": load_before, "loadavg_after": check_load("after"),
        "command": "python -m experiments.benchmarks.train_step "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
