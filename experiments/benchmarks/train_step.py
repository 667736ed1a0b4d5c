"""Train-step throughput and compile time on 1 device vs an 8-device (fake CPU) mesh.

    python -m experiments.benchmarks.train_step --out results/bench_train_step.json [--steps 200]

Checks first that both meshes compute the same step (loss and parameters), then reports compile time and
steady-state time per step apart (median over ``--repeats`` timed windows, ``block_until_ready``), and the ratio.
On a CPU the 8 "devices" share the same cores, so the ratio measures the partitioning overhead, not a speed-up;
on a TPU/GPU host run it with the real devices (``--devices all``).
"""

from __future__ import annotations

import os
import sys
import time

if "--devices" not in sys.argv or "fake8" in sys.argv:  # must precede the first JAX import
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from eigenkit import train  # noqa: E402
from experiments.benchmarks._common import parser, write_result  # noqa: E402
from experiments.digits_mlp import train as digits  # noqa: E402 - public names: the model, data and loss
from experiments.digits_mlp.configs import cpu  # noqa: E402


def bench(devices, config, steps: int, repeats: int) -> dict:
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
    times = []
    for _ in range(repeats):
        s = state
        t0 = time.perf_counter()
        for b in dev_batches:
            s, m = compiled(s, b, key)
        jax.block_until_ready(s)
        times.append((time.perf_counter() - t0) / steps)
    per_step = float(np.median(times))
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(s.params))]
    return {"devices": len(devices), "compile_s": compile_s, "step_s": per_step, "steps_per_s": 1.0 / per_step,
            "examples_per_s": config.batch_size / per_step, "first_loss": first_loss, "_params": leaves}


def main(argv=None) -> int:
    p = parser(__doc__, out="results/bench_train_step.json")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--devices", default="fake8", help="fake8 (8 fake CPU devices) or all (the real devices)")
    args = p.parse_args(argv)
    config = cpu.get_config()
    config.batch_size = args.batch_size
    n = jax.device_count()
    one = bench(jax.devices()[:1], config, args.steps, args.repeats)
    many = bench(jax.devices(), config, args.steps, args.repeats)
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(one.pop("_params"), many.pop("_params")))
    if abs(one["first_loss"] - many["first_loss"]) > 1e-4 * abs(one["first_loss"]) or max_diff > 1e-3:
        raise SystemExit(f"correctness check failed: loss {one['first_loss']} vs {many['first_loss']}, "
                         f"max parameter difference {max_diff}")
    result = {
        "benchmark": "train_step", "model": "digits MLP (BatchNorm, dropout)", "batch_size": args.batch_size,
        "steps": args.steps, "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(), "jax": jax.__version__,
        "correctness": {"first_loss_1dev": one["first_loss"], "first_loss_ndev": many["first_loss"],
                        "max_param_diff_after_run": max_diff},
        "one_device": one, f"{n}_devices": many,
        "ratio_step_time_ndev_over_1dev": many["step_s"] / one["step_s"],
        "ratio_compile_ndev_over_1dev": many["compile_s"] / one["compile_s"],
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
