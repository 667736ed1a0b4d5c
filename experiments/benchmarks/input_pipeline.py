"""Input-pipeline throughput: Grain (eigenkit.train.grain_batches) vs the step-indexed host loops, with the training
step each feeds beside it, so "the pipeline is not the bottleneck" is a measured ratio.

    python -m experiments.benchmarks.input_pipeline --out experiments/benchmarks/results/input_pipeline.json \
        [--threads 2] [--repeats 3] [--batches 200]
    python -m experiments.benchmarks.input_pipeline --threads 1 \
        --out /tmp/input_pipeline_1thread.json   # the single-thread control
    python -m experiments.benchmarks.input_pipeline --quick --out /tmp/input_pipeline_quick.json   # checks it runs

* Fashion-MNIST (60,000 x 784 float32 in memory), global batch 64 (the S4D cpu preset's): ``train.epoch_batches``
  (the host loop of every in-memory preset) vs Grain in-process (reader threads) vs Grain with 2 worker processes;
  beside them the S4D cpu preset's train step (the model that consumes these batches).
* An image folder (generated JPEGs of ImageNet's typical 500 x 375, RandomResizedCrop 224 + flip), batch 32:
  ``data.ImageBatches`` (thread pool, what the GCR ImageNet preset uses) vs Grain in-process vs Grain with 2
  workers; beside them one ResNet-50-D float32 train step at batch 32 (``eigenkit.nn.resnet50d``, SGD).

Correctness first: every pipeline's batches are checked to be rows of the source (Fashion-MNIST: ``x`` equals the
row its id names; images: shape, dtype and labels of the files), and two epochs' worth of Grain batches to hold every
record exactly twice in process (each epoch is a permutation) and 1-3 times with workers (each worker batches every
w-th record of the stream and the loader interleaves their batches, reaching into a third epoch).

Times: batches/s over ``--batches`` consecutive batches after a warm-up of 5 (median of ``--repeats``
windows for the in-memory sets), step times as compile and steady state apart. The machine's load average is
recorded before and after; run it on an idle machine.

Threads: ``--threads N`` (default 2) pins the process to N cores (``_common.pin_threads``: XLA's pool, NumPy's BLAS;
Grain's worker processes inherit the mask) and sets the reader threads of ``ImageBatches`` and of Grain's image
pipelines to N; ``threads`` in the JSON holds the report and the measured CPU/wall ratio of each consumer step.
No interleaved A/B (``--ab-rounds`` is accepted for uniformity and ignored): Grain prefetches in background threads
and worker processes, which keep reading (and filling their buffers) while another pipeline is being timed, so an
interleaved window would time the draining of a prefetch buffer and slow the other side; each pipeline is timed in
its own windows instead, one after the other.

``--quick`` (2,048 Fashion-MNIST rows, 5 batches, 1 repeat, a 1-layer S4D; 16 JPEGs, batches of 4 at 64 px, a
ResNet-D of one block per stage at width 16 as the consumer) checks the script end to end; its timings mean nothing.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

import jax
import numpy as np

from eigenkit import data, train
from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    machine_info,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)

QUICK = {"batches": 5, "image_batches": 2, "images": 16, "resnet_steps": 1, "repeats": 1}


def _rate(next_batch, n: int) -> float:
    for _ in range(5):  # warm-up: thread pools, worker start, prefetch
        next_batch()
    t0 = time.perf_counter()
    for _ in range(n):
        next_batch()
    return n / (time.perf_counter() - t0)


def _check_rows(batch, arrays):
    ids = batch["i"]
    if not np.array_equal(batch["x"], arrays["x"][ids]) or not np.array_equal(batch["y"], arrays["y"][ids]):
        raise SystemExit("correctness check failed: a batch is not the rows its ids name")


def fashion(n_batches: int, repeats: int, *, quick: bool = False) -> dict:
    x, y = data.fashion_mnist("train")
    if quick:
        x, y = x[:2048], y[:2048]
    arrays = {"x": x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0), "y": y.astype(np.int32),
              "i": np.arange(len(x), dtype=np.int64)}
    bs = 64
    host = train.epoch_batches(arrays, bs, seed=0)
    _check_rows(host(3), arrays)
    out = {"batch_size": bs, "n_examples": len(x)}
    steps = iter(range(10**9))
    out["host_loop_batches_per_s"] = float(np.median([_rate(lambda: host(next(steps)), n_batches)
                                                      for _ in range(repeats)]))
    for name, workers in (("grain_in_process", 0), ("grain_2_workers", 2)):
        it = train.grain_batches(train.ArraySource(arrays), bs, seed=0, worker_count=workers)
        first = [next(it) for _ in range(2 * len(x) // bs)]  # two epochs' worth of records
        counts = np.bincount(np.concatenate([b["i"] for b in first]), minlength=len(x))
        # each epoch is a permutation; worker j batches records j, j + w, ... of the stream and the loader
        # interleaves the workers' batches, so two epochs' worth of batches reach a little into a third epoch
        if counts.min() < 1 or counts.max() > (2 if workers == 0 else 3):
            raise SystemExit(f"correctness check failed: {name}'s record counts over two epochs' worth of batches "
                             f"are {counts.min()}..{counts.max()}")
        _check_rows(first[7], arrays)
        out[f"{name}_batches_per_s"] = float(np.median([_rate(it.__next__, n_batches) for _ in range(repeats)]))
    # the consumer: the S4D cpu preset's train step at the same batch
    from flax import nnx

    from experiments.s4d import train as s4d
    from experiments.s4d.configs import cpu

    config = cpu.get_config()
    if quick:
        config.n_layers = 1
    model = s4d.make_model(config)
    mesh = train.make_mesh(jax.devices()[:1])
    state = train.TrainState.create(model, s4d.make_optimizer(config, model), mesh=mesh)
    step = train.make_train_step(s4d.loss_fn, mesh=mesh, donate=False)
    b = host(0)
    batch = train.shard_batch({"x": b["x"].reshape(bs, 784, 1), "y": b["y"]}, mesh)
    key = jax.random.key(0)
    run = lambda: jax.block_until_ready(step(state, batch, key))  # noqa: E731
    compile_s, step_s = first_and_median(run, repeats)
    del nnx
    out.update(consumer="S4D cpu preset train step (4 x H=128, N=64, L=784, batch 64)", step_compile_s=compile_s,
               step_s=step_s, step_batches_per_s=1.0 / step_s, step_measured_parallelism=measured_parallelism(run, 2))
    if quick:
        out["consumer"] = "--quick: a 1-layer S4D cpu preset train step (timings meaningless)"
    for k in ("host_loop", "grain_in_process", "grain_2_workers"):
        out[f"{k}_headroom"] = out[f"{k}_batches_per_s"] * step_s  # > 1: the pipeline outruns the step
    return out


def _jpegs(root: pathlib.Path, n: int, n_classes: int = 4) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(n_classes):
        (root / f"c{c}").mkdir(parents=True)
    yy, xx = np.mgrid[0:375, 0:500]
    for i in range(n):  # smooth images with noise: JPEG sizes near ImageNet's (~110 kB at 500 x 375)
        base = np.stack([np.sin(xx / (20 + 7 * k + i % 11) + k) * 80 + 128 for k in range(3)], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"c{i % n_classes}" / f"{i}.JPEG", quality=90)


def images(n_batches: int, n_images: int, resnet_steps: int, *, threads: int = 2, quick: bool = False) -> dict:
    bs, size = (4, 64) if quick else (32, 224)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "train"
        _jpegs(root, n_images)
        ds = data.image_folder(root)
        mean_kb = float(np.mean([os.path.getsize(p) for p in ds.paths]) / 1024)
        out = {"batch_size": bs, "image_size": size, "n_images": n_images, "mean_jpeg_kb": mean_kb,
               "threads": threads}
        ib = data.ImageBatches(ds, bs, seed=0, image_size=size, num_workers=threads)
        b = ib(0)
        if b["x"].shape != (bs, size, size, 3) or b["x"].dtype != np.uint8:
            raise SystemExit(f"correctness check failed: ImageBatches gave {b['x'].shape} {b['x'].dtype}")
        steps = iter(range(1, 10**9))
        out["image_batches_batches_per_s"] = _rate(lambda: ib(next(steps)), n_batches)
        ib.close()
        for name, workers in (("grain_in_process", 0), ("grain_2_workers", 2)):
            it = train.grain_batches(data.ImageRecords(ds), bs, seed=0, worker_count=workers, num_threads=threads,
                                     transforms=[data.RandomCropFlip(ds, size)])
            b = next(it)
            if b["x"].shape != (bs, size, size, 3) or not set(b["y"].tolist()) <= set(ds.labels.tolist()):
                raise SystemExit(f"correctness check failed: {name} gave {b['x'].shape}")
            out[f"{name}_batches_per_s"] = _rate(it.__next__, n_batches)
    # the consumer: one ResNet-50-D float32 train step at batch 32
    import optax
    from flax import nnx

    from eigenkit.nn import ResNetD, resnet50d

    if quick:  # one block per stage at width 16: checks the path, not ResNet-50-D's cost
        model = ResNetD((1, 1, 1, 1), width=16, stem_width=8, num_classes=1000, rngs=nnx.Rngs(0))
    else:
        model = resnet50d(num_classes=1000, rngs=nnx.Rngs(0))
    mesh = train.make_mesh(jax.devices()[:1])
    state = train.TrainState.create(model, optax.sgd(0.1, momentum=0.9), mesh=mesh)

    def loss_fn(m, batch, key):
        del key
        return train.classification_loss(m(data.normalize_images(batch["x"])), batch["y"])

    step = train.make_train_step(loss_fn, mesh=mesh, donate=False)
    rng = np.random.default_rng(0)
    batch = train.shard_batch({"x": rng.integers(0, 256, (bs, size, size, 3), dtype=np.uint8),
                               "y": rng.integers(0, 1000, bs).astype(np.int32)}, mesh)
    key = jax.random.key(0)
    run = lambda: jax.block_until_ready(step(state, batch, key))  # noqa: E731
    compile_s, step_s = first_and_median(run, resnet_steps)
    out.update(consumer="ResNet-50-D float32 train step, batch 32 at 224 px (SGD)", step_compile_s=compile_s,
               step_s=step_s, step_batches_per_s=1.0 / step_s, step_measured_parallelism=measured_parallelism(run, 1))
    if quick:
        out["consumer"] = "--quick: ResNet-D (1, 1, 1, 1) width 16, batch 4 at 64 px (timings meaningless)"
    for k in ("image_batches", "grain_in_process", "grain_2_workers"):
        out[f"{k}_headroom"] = out[f"{k}_batches_per_s"] * step_s
    return out


def build_parser():
    """The command line (``_common.parser`` plus the batch counts and ``--quick``)."""
    p = parser(__doc__, out="experiments/benchmarks/results/input_pipeline.json", repeats=3)
    p.add_argument("--batches", type=int, default=200, help="timed batches per in-memory pipeline")
    p.add_argument("--image-batches", type=int, default=24, help="timed batches per image pipeline")
    p.add_argument("--images", type=int, default=256, help="generated JPEGs")
    p.add_argument("--resnet-steps", type=int, default=2, help="timed ResNet-50-D steps")
    p.add_argument("--quick", action="store_true", help="tiny sizes (see the docstring): checks it runs; timings "
                                                        "meaningless")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    threads = pin_threads(args.threads)  # before JAX's backend starts (and before Grain starts its workers)
    load_before = check_load("before")
    before = machine_info()
    result = {"benchmark": "input_pipeline", "machine_before": before, "quick": args.quick,
              "fashion_mnist": fashion(args.batches, args.repeats, quick=args.quick),
              "image_folder": images(args.image_batches, args.images, args.resnet_steps, threads=args.threads,
                                     quick=args.quick)}
    threads["measured_parallelism"] = {k: result[k]["step_measured_parallelism"]
                                       for k in ("fashion_mnist", "image_folder")}
    result.update(threads=threads, interleaved_ab="not offered (prefetching pipelines; see the module docstring)",
                  loadavg_before=load_before, loadavg_after=check_load("after"))
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
