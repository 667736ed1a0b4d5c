"""GCR's ImageNet recipe: ResNet-50-D, vector softmax vs GCR heads, streamed ImageFolder JPEGs, linear transfer.

The official ``resnet50d_8xb32_coslr_in1k_gcr{k}`` recipe (innerlee/GCR on mmpretrain; ../shared/methods/gcr.md §3):
ResNet-50-D (:class:`eigenkit.nn.ResNetD`), SGD momentum 0.9 with weight decay 1e-4 on every non-geometric
parameter, the GCR bases on Riemannian SGD with the same scheduled lr (``lr_factor`` 1, re-orthonormalisation every
5 steps, the official Euclidean-buffer momentum), lr 0.1 for a global batch of 256 (8 GPUs × 32), cosine annealing
stepped **per epoch** over 100 epochs, per-GPU BatchNorm (``bn_group_size = 32`` reproduces it on any device count),
γ = 25, RandomResizedCrop 224 + flip / resize 256 + centre crop 224 (``eigenkit.data`` ImageFolder pipeline).
Reported: ImageNet val top-1 / top-5 of every head, and the linear-transfer protocol: freeze the backbone, extract
the pooled 2048-d features of a transfer dataset's train and test folders (resize 256, centre crop 224), fit a
multinomial logistic regression (``eigenkit.metrics.linear_probe``) and report its test accuracy.

Deliberate deviations: the probe is scikit-learn's L2 logistic regression on standardised features at C = 1 (the
paper follows Kornblith et al. 2019, which tunes the L2 strength on a validation split); images are resized with
Pillow (antialiased bilinear), mmpretrain's default is OpenCV bilinear.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eigenkit import data, train
from eigenkit.methods import gcr
from eigenkit.metrics import linear_probe
from eigenkit.nn import ResNetD
from experiments._contract import Result, SeedSweep


def _dtype(config):
    """The backbone's computation dtype from the run's precision policy (``train.Precision``: ``compute_dtype``,
    float32 parameters and optimiser state; the Grassmann bases and BatchNorm statistics stay float32)."""
    precision = train.Precision.from_config(config)
    if jnp.dtype(precision.compute) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)):
        raise ValueError(f"config.compute_dtype must be float32 or bfloat16, got {config.compute_dtype!r}")
    return precision.compute


class ImageNetNet(nnx.Module):
    """ResNet-D backbone on uint8 images (normalised inside) + a head: ``k == 0`` linear softmax (mmpretrain's
    ``LinearClsHead``: N(0, 0.01²) weights, zero bias), else a GCR head with k-dim class subspaces."""

    def __init__(self, config, num_classes: int, k: int, *, rngs: nnx.Rngs):
        group = int(config.bn_group_size) or None
        self.backbone = ResNetD(tuple(int(s) for s in config.stage_sizes), width=int(config.width),
                                stem_width=int(config.stem_width), bn_group_size=group, dtype=_dtype(config),
                                rngs=rngs)
        d = self.backbone.num_features
        if k == 0:
            self.head = nnx.Linear(d, num_classes, kernel_init=nnx.initializers.normal(0.01), rngs=rngs)
        else:
            self.head = gcr.GrassmannClassifier(d, num_classes, k, gamma=config.gcr_gamma, rngs=rngs)

    def features(self, x):
        return self.backbone.features(data.normalize_images(x, dtype=self.backbone.stem[0].dtype))

    def __call__(self, x):
        return self.head(self.features(x))


def epoch_cosine_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    """mmengine ``CosineAnnealingLR(T_max=epochs, by_epoch=True, eta_min=0)``: the lr of epoch e is
    ``lr · (1 + cos(π e / epochs)) / 2``, constant within the epoch; optional linear warm-up over ``warmup_epochs``
    (iteration-based, as mmengine's ``LinearLR``; 0 in this recipe)."""
    lr, epochs = float(config.learning_rate), int(config.epochs)
    warm = int(round(float(config.warmup_epochs) * steps_per_epoch))

    def schedule(step):
        epoch = jnp.floor_divide(step, steps_per_epoch).astype(jnp.float32)
        cos = jnp.float32(0.5 * lr) * (1.0 + jnp.cos(jnp.float32(math.pi) * epoch / jnp.float32(epochs)))
        if warm <= 0:
            return cos
        return cos * jnp.minimum(1.0, (step.astype(jnp.float32) + 1.0) / jnp.float32(warm))

    return schedule


def make_tx(config, k: int, params, schedule) -> optax.GradientTransformation:
    from eigenkit import manifolds
    from experiments._contract import config_enum

    euclid = optax.chain(optax.add_decayed_weights(config.weight_decay), optax.sgd(schedule, momentum=config.momentum))
    if k == 0:
        return euclid
    rsgd = manifolds.riemannian_sgd(
        schedule, config.momentum,
        momentum_rule=config_enum(manifolds.MomentumRule, config.gcr_momentum_rule, key="gcr_momentum_rule"),
        reorth_every=int(config.gcr_reorth_every), lr_factor=config.gcr_lr_factor)
    return optax.partition({gcr.GRASSMANN_LABEL: rsgd, "euclidean": euclid}, gcr.grassmann_labels(params))


def make_loss_fns(label_smoothing: float):
    """Training loss (cross-entropy on smoothed one-hot labels, + accuracy) and masked top-1 / top-5 sums."""

    def loss_fn(model, batch, key):
        del key
        logits = model(batch["x"]).astype(jnp.float32)
        targets = optax.smooth_labels(jax.nn.one_hot(batch["y"], logits.shape[-1], dtype=jnp.float32),
                                      label_smoothing)
        loss = optax.softmax_cross_entropy(logits, targets).mean()
        acc = jnp.mean((jnp.argmax(logits, -1).astype(batch["y"].dtype) == batch["y"]).astype(jnp.float32))
        return loss, {"accuracy": acc}

    def metric_fn(model, batch):
        logits = model(batch["x"]).astype(jnp.float32)
        mask = batch["mask"].astype(jnp.float32)
        y = batch["y"]  # indices compared in the labels' dtype (argmax is int64 under x64)
        top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1].astype(y.dtype)
        hit5 = jnp.any(top5 == y[:, None], axis=-1).astype(jnp.float32)
        hit1 = (jnp.argmax(logits, -1).astype(y.dtype) == y).astype(jnp.float32)
        return {"top1": jnp.sum(hit1 * mask), "top5": jnp.sum(hit5 * mask), "count": jnp.sum(mask)}

    return loss_fn, metric_fn


def _eval_batches(config, ds):
    return data.eval_image_batches(ds, int(config.eval_batch_size), image_size=int(config.image_size),
                                   resize_size=int(config.resize_size), num_workers=int(config.num_workers))


def extract_features(state, ds, config, mesh) -> tuple[np.ndarray, np.ndarray]:
    """Frozen backbone features (eval mode) of every image of ``ds`` (all processes' images, in order)."""

    def feat(st, b):
        model = nnx.merge(st.graphdef, st.params, st.rest)
        model.eval()
        return model.features(b["x"]), b["y"], b["mask"]

    # replicated outputs: every process gets the global batch's features, labels and mask
    feat = jax.jit(feat, out_shardings=train.replicated_sharding(mesh))
    out, labels = [], []
    for b, _ in _eval_batches(config, ds):
        f, y, m = jax.device_get(feat(state, train.shard_batch(b, mesh)))
        m = np.asarray(m, bool)
        out.append(np.asarray(f)[m])
        labels.append(np.asarray(y)[m])
    return np.concatenate(out), np.concatenate(labels)


def model_cost(config, num_classes: int) -> dict[str, float]:
    """Parameter count (backbone + a linear head of ``num_classes``) and XLA's forward FLOP count for one image."""
    m = nnx.eval_shape(lambda: ResNetD(tuple(int(s) for s in config.stage_sizes), width=int(config.width),
                                       stem_width=int(config.stem_width), num_classes=num_classes,
                                       dtype=jnp.float32, rngs=nnx.Rngs(0)))
    n_params = int(sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param))))
    graphdef, st = nnx.split(m)

    def fwd(st, x):
        model = nnx.merge(graphdef, st)
        model.eval()
        return model(x)

    s = int(config.image_size)
    compiled = jax.jit(fwd).lower(st, jax.ShapeDtypeStruct((1, s, s, 3), jnp.float32)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"params_with_linear_head": n_params, "forward_flops_per_image": float(cost.get("flops", float("nan")))}


def _name(k: int) -> str:
    return "softmax" if k == 0 else f"gcr_k{k}"


def train_head(config, workdir: pathlib.Path, train_ds, val_ds, k: int, seed: int, mesh):
    """Train one model (softmax or GCR k) on the ImageFolder train split; returns (state, val metrics, seconds)."""
    num_classes = len(train_ds.classes)
    model = ImageNetNet(config, num_classes, k, rngs=nnx.Rngs(seed))
    bs = int(config.batch_size)
    spe = len(train_ds) // bs
    pipeline = str(config.get("input_pipeline", "host"))
    if pipeline == "grain":  # Grain: decoding in reader threads / worker processes, position checkpointed
        batches = train.grain_batches(data.ImageRecords(train_ds), bs, seed=seed,
                                      transforms=[data.RandomCropFlip(train_ds, int(config.image_size))],
                                      worker_count=int(config.grain_workers), num_threads=int(config.num_workers))
    elif pipeline == "host":  # data.ImageBatches: a pure function of the step, decoded in a thread pool
        batches = data.ImageBatches(train_ds, bs, seed=seed, image_size=int(config.image_size),
                                    num_workers=int(config.num_workers))
    else:
        raise ValueError(f"config.input_pipeline must be 'grain' or 'host', got {pipeline!r}")
    num_steps = int(config.epochs) * spe
    tx = make_tx(config, k, nnx.state(model, nnx.Param), epoch_cosine_schedule(config, spe))
    loss_fn, metric_fn = make_loss_fns(float(config.label_smoothing))
    state = train.TrainState.create(model, tx, mesh=mesh)
    train.Precision.from_config(config).check_opt_state(state.opt_state)  # momentum buffers in float32
    step = train.make_train_step(loss_fn, mesh=mesh)
    eval_step = train.make_eval_step(metric_fn, mesh=mesh)

    def eval_fn(s):
        return train.accumulate([eval_step(s, train.shard_batch(b, mesh)) for b, _ in _eval_batches(config, val_ds)])

    sub = train.subrun_config(config, drop=("seeds", "head_dims", "transfer_head_dims"), head_dim=k, seed=seed)
    t0 = time.perf_counter()
    try:
        state, history = train.fit(
            state, step, batches=batches, num_steps=num_steps, workdir=workdir, config=sub, mesh=mesh, seed=seed,
            eval_fn=eval_fn, eval_every=int(round(float(config.eval_every_epochs) * spe)),
            checkpoint_every=int(config.checkpoint_every), log_every=int(config.log_every),
            show_progress=bool(config.show_progress), desc=f"gcr imagenet {_name(k)} seed {seed}")
    finally:
        if hasattr(batches, "close"):
            batches.close()
    final = {k_[len("eval/"):]: v for k_, v in history[-1].items() if k_.startswith("eval/")}
    return state, final, time.perf_counter() - t0


def train_and_evaluate(config, workdir: str) -> Result:
    root = pathlib.Path(str(config.data_dir))
    if not str(config.data_dir):
        raise data.MissingDataError("the ImageNet preset needs --config.data_dir=/path/to/imagenet (the folder that "
                                    "holds train/ and val/, each in the ImageFolder layout <class>/<image>.JPEG)")
    train_ds = data.image_folder(root / "train")
    val_ds = data.image_folder(root / str(config.val_split), classes=train_ds.classes)
    transfer = None
    if str(config.transfer_dir):
        troot = pathlib.Path(str(config.transfer_dir))
        ttrain = data.image_folder(troot / "train")
        transfer = (ttrain, data.image_folder(troot / str(config.transfer_test_split), classes=ttrain.classes))
    workdir = pathlib.Path(workdir)
    mesh = train.make_mesh()
    cost = model_cost(config, len(train_ds.classes))
    if jax.process_index() == 0:
        print(f"ImageNet pipeline: {len(train_ds)} train / {len(val_ds)} {config.val_split} images, "
              f"{len(train_ds.classes)} classes; backbone {cost['params_with_linear_head']:,} parameters with a "
              f"linear head, {cost['forward_flops_per_image'] / 1e9:.2f} GFLOPs per {config.image_size}px image "
              f"(XLA count, 2 per multiply-add)", flush=True)
    sweep = SeedSweep()
    extras: dict = {**cost, "n_train": len(train_ds), "n_val": len(val_ds), "num_classes": len(train_ds.classes)}
    heads = [0, *(int(k) for k in config.head_dims)]
    for seed in config.seeds:
        for k in heads:
            state, final, secs = train_head(config, workdir / f"{_name(k)}_s{seed}", train_ds, val_ds, k, seed, mesh)
            sweep.add(f"{_name(k)}_top1", final["top1"], seed=seed, baseline=(k == 0), higher_is_better=True)
            sweep.add(f"{_name(k)}_top5", final["top5"], seed=seed, baseline=(k == 0), higher_is_better=True)
            extras[f"{_name(k)}_s{seed}_train_seconds"] = secs
            if transfer is not None and (k == 0 or k in tuple(int(t) for t in config.transfer_head_dims)):
                ftr, ytr = extract_features(state, transfer[0], config, mesh)
                fte, yte = extract_features(state, transfer[1], config, mesh)
                acc = linear_probe(ftr, ytr, fte, yte, seed=seed, max_iter=int(config.probe_max_iter))
                sweep.add(f"transfer_{config.transfer_name}_{_name(k)}_probe_accuracy", acc, seed=seed,
                          baseline=(k == 0), higher_is_better=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "gcr_imagenet_results.json").write_text(json.dumps(
        {"per_seed": {m.name: list(m.values) for m in sweep.metrics()}, **extras}, indent=2))
    return Result(sweep.metrics(), extras=extras)
