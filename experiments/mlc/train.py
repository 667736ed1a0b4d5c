"""MLC vs k-means and spectral clustering on the same TCR-pre-trained features (Ding et al., ICCV 2023, Alg. 1).

Per seed:

1. **TCR pre-training** (paper §3.2, eq. 5): the network (backbone → CPP trunk → feature head) maximises the coding
   rate of the mean of ``A`` augmented views plus their agreement (:func:`eigenkit.methods.mlc.tcr_pretrain_loss`).
2. **Baselines on the pre-trained features** ``Z_TCR`` of the evaluation images: k-means; spectral clustering of a
   cosine kNN graph; and spectral clustering of the Sinkhorn membership ``P_{Ω,η}(|Z Zᵀ|)`` — what MLC starts from.
3. **MLC** (eq. 4, 6): copy the feature head into the cluster head, then train ``−R(Z) + γ R_c(Z, Γ)`` with
   ``Γ`` from the cluster head's Sinkhorn layer, on the global batch of both views.
4. **Inference** (Alg. 1 line 10): ``Γ`` of the evaluation images (one Sinkhorn over all of them), spectral
   clustering on it; ACC (Hungarian) and NMI against the true classes.
5. **Linearising**: per-class numerical rank (95 % energy, paper §4) and singular-value spectra of the raw inputs,
   ``Z_TCR`` and ``Z_MLC``; mean |cos| between classes.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import data, metrics, nn, train
from eigenkit.linalg import SinkhornGrad
from eigenkit.methods import mlc
from experiments._contract import Result, SeedSweep, config_enum, markdown_table
from experiments.mlc.augment import augment

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
DATASETS = ("fashion_mnist", "cifar10", "cifar20", "cifar100")


def load_data(config, seed: int):
    """``(x_train, x_eval, y_eval, source)``: float32 NHWC images normalised per channel; the training images are a
    seeded subset of the train split (``n_train``, 0 = all; their labels are never read), the evaluation images a
    seeded subset of the test split (``n_eval``)."""
    name = str(config.dataset)
    if name == "fashion_mnist":
        xtr, _ = data.fashion_mnist("train")
        xte, yte = data.fashion_mnist("test")
        prep = lambda x: ((x.astype(np.float32) / 255.0 - FMNIST_MEAN) / FMNIST_STD)[..., None]  # noqa: E731
        source = "Fashion-MNIST (Debian dataset-fashion-mnist)"
    elif name in ("cifar10", "cifar20", "cifar100"):
        root = str(config.data_dir) or None
        if name == "cifar10":
            xtr, _ = data.cifar10("train", root=root)
            xte, yte = data.cifar10("test", root=root)
        else:
            mode = "coarse" if name == "cifar20" else "fine"
            xtr, _ = data.cifar100("train", root=root, label_mode=mode)
            xte, yte = data.cifar100("test", root=root, label_mode=mode)
        prep = lambda x: (x.astype(np.float32) / 255.0 - CIFAR_MEAN) / CIFAR_STD  # noqa: E731
        source = f"{name} from {root or 'the environment variable'}"
    else:
        raise ValueError(f"config.dataset must be one of {DATASETS}, got {name!r}")
    rng = np.random.default_rng([seed, 2023])
    tr = rng.permutation(len(xtr))
    tr = tr[: int(config.n_train)] if int(config.n_train) else tr
    te = rng.permutation(len(xte))
    te = np.sort(te[: int(config.n_eval)] if int(config.n_eval) else te)
    return prep(xtr[tr]), prep(xte[te]), yte[te].astype(np.int32), source


def build_model(config, image_shape, seed: int) -> mlc.MLCNet:
    rngs = nnx.Rngs(seed)
    h, w, c = image_shape
    if config.backbone == "small_cnn":
        backbone = nn.SmallCNN(c, (h, w), channels=tuple(config.channels), features=int(config.features),
                               batch_norm=True, final_relu=True, rngs=rngs)
        feats = int(config.features)
    elif config.backbone == "resnet18":
        backbone = nn.CifarResNet(tuple(config.stage_sizes), width=int(config.width), in_channels=c, rngs=rngs)
        feats = backbone.num_features
    else:
        raise ValueError(f"config.backbone must be 'small_cnn' or 'resnet18', got {config.backbone!r}")
    return mlc.MLCNet(backbone, feats, int(config.hidden), int(config.z_dim), rngs=rngs)


def _views(model, x, key, config):
    a = int(config.num_views)
    keys = jax.random.split(key, a)
    xs = jnp.concatenate([augment(k, x, crop_min=float(config.crop_min), flip=bool(config.flip),
                                  colour=float(config.colour_jitter)) for k in keys])
    z, c = model(xs)
    n = x.shape[0]
    return z.reshape(a, n, -1), c.reshape(a, n, -1)


def make_loss_fns(config):
    """``(tcr_loss_fn, mlc_loss_fn)`` with the eigenkit.train signature ``loss_fn(model, batch, key)``; both see
    the **global** batch (the jitted step's arrays are sharded over the mesh; XLA gathers them for the Grams)."""
    grad_mode = config_enum(SinkhornGrad, config.sinkhorn_grad, key="sinkhorn_grad")

    def tcr_fn(model, batch, key):
        z, _ = _views(model, batch["x"], key, config)
        return mlc.tcr_pretrain_loss(z, eps=math.sqrt(float(config.tcr_eps_sq)), lam=float(config.tcr_lambda))

    def mlc_fn(model, batch, key):
        z, c = _views(model, batch["x"], key, config)
        loss, aux = mlc.mlc_loss_views(z, c, eps=math.sqrt(float(config.eps_sq)), eta=float(config.eta),
                                       n_iter=int(config.sinkhorn_iters), gamma=float(config.gamma),
                                       pigam=float(config.pigam), abs_similarity=bool(config.abs_similarity),
                                       grad_mode=grad_mode)
        return loss, {k: aux[k] for k in ("rate", "compress", "reg")}

    return tcr_fn, mlc_fn


def _sgd(lr, steps: int, momentum: float, wd: float, warmup: int):
    sched = (optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), 0.0) if warmup
             else optax.cosine_decay_schedule(lr, max(steps, 1)))
    return optax.chain(optax.add_decayed_weights(wd), optax.sgd(sched, momentum=momentum))


def make_tx(config, phase: str, params, steps: int):
    """Phase ``tcr``: SGD-momentum, cosine schedule with warm-up. Phase ``mlc``: CPP's two groups — the cluster
    head (``lr_cluster``, ``weight_decay_cluster``) and everything else (``learning_rate``, ``weight_decay``)."""
    if phase == "tcr":
        return _sgd(float(config.tcr_learning_rate), steps, float(config.momentum), float(config.weight_decay),
                    int(config.tcr_warmup_steps))
    rest = _sgd(float(config.learning_rate), steps, float(config.momentum), float(config.weight_decay), 0)
    head = _sgd(float(config.lr_cluster), steps, float(config.momentum), float(config.weight_decay_cluster), 0)
    labels = train.label_params(params, lambda path, _: "cluster" if path.startswith("cluster_head") else None,
                                default="rest")
    return optax.partition({"cluster": head, "rest": rest}, labels)


@jax.jit
def _embed_batch(state, xb):
    model = nnx.merge(state.graphdef, state.params, state.rest)
    model.eval()
    return model(xb)


def embed(state, x, mesh, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z, c)`` of ``x`` in eval mode (BatchNorm running statistics), float32 numpy. One jitted function for
    every call (the TCR and MLC states of a seed share their structure, so the second call reuses the compile)."""
    zs, cs = [], []
    for b, valid in train.padded_batches({"x": x}, batch_size, mesh.devices.size):
        z, c = _embed_batch(state, train.shard_batch(b["x"], mesh))
        zs.append(np.asarray(z)[:valid])
        cs.append(np.asarray(c)[:valid])
    return np.concatenate(zs), np.concatenate(cs)


@functools.partial(jax.jit, static_argnames=("eta", "n_iter", "abs_similarity"))
def _membership(c, *, eta: float, n_iter: int, abs_similarity: bool):
    return mlc.membership(c, eta=eta, n_iter=n_iter, abs_similarity=abs_similarity)


def eval_membership(c: np.ndarray, config) -> np.ndarray:
    """``Γ`` of the whole evaluation set (one Sinkhorn, as at training, with the training η and iterations)."""
    g = _membership(jnp.asarray(c), eta=float(config.eta), n_iter=int(config.sinkhorn_iters),
                    abs_similarity=bool(config.abs_similarity))
    return np.asarray(g, np.float64)


def class_ranks(x: np.ndarray, y: np.ndarray) -> list[int]:
    return [metrics.numerical_rank(x[y == k]) for k in np.unique(y)]


def cross_class_cos(z: np.ndarray, y: np.ndarray) -> float:
    """Mean ``|z_iᵀ z_j|`` over pairs from different classes (MLC §4: ≈ 0 when classes lie in orthogonal
    subspaces); rows normalised first."""
    zh = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    s = np.abs(zh @ zh.T)
    diff = y[:, None] != y[None, :]
    return float(s[diff].mean())


def _fit(model, tx, loss_fn, x, config, workdir, seed, mesh, steps, phase):
    sub = train.subrun_config(config, drop=("seeds",), seed=seed, phase=phase)
    t0 = time.perf_counter()
    state, _ = train.fit_and_evaluate(model, tx, loss_fn, train_data={"x": x}, config=sub, workdir=workdir,
                                      seed=seed, num_steps=steps, mesh=mesh, desc=f"mlc {phase} seed {seed}")
    return state, time.perf_counter() - t0


def _plot(path: pathlib.Path, spectra: dict[str, list[np.ndarray]], ranks: dict[str, list[int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(spectra), figsize=(4.2 * len(spectra), 3.4), sharey=True)
    for ax, (name, per_class) in zip(np.atleast_1d(axes), spectra.items()):
        for s in per_class:
            e = s**2 / np.sum(s**2)
            ax.semilogy(np.arange(1, len(e) + 1)[:40], e[:40], lw=1)
        ax.set_title(f"{name}\nper-class rank (95%): median {int(np.median(ranks[name]))}")
        ax.set_xlabel("singular value index")
    np.atleast_1d(axes)[0].set_ylabel("energy fraction σ_i² / Σσ²")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = train.make_mesh()
    tcr_fn, mlc_fn = make_loss_fns(config)
    sweep, diag = SeedSweep(), SeedSweep()
    t_start = time.perf_counter()
    spectra, rank_lists, source = {}, {}, ""
    per_seed_records = []
    for seed in config.seeds:
        xtr, xev, yev, source = load_data(config, seed)
        k = int(config.num_clusters) or int(len(np.unique(yev)))  # 0: as many clusters as classes
        model = build_model(config, xtr.shape[1:], seed)
        steps1, steps2 = int(config.tcr_steps), int(config.mlc_steps)
        tx1 = make_tx(config, "tcr", nnx.state(model, nnx.Param), steps1)
        state, secs1 = _fit(model, tx1, tcr_fn, xtr, config, workdir / f"tcr_s{seed}", seed, mesh, steps1, "tcr")
        z_tcr, _ = embed(state, xev, mesh, int(config.eval_batch_size))

        # baselines on the same pre-trained features
        t0 = time.perf_counter()
        pred = {
            "kmeans_pixels": metrics.kmeans(xev.reshape(len(xev), -1), k, seed=seed),
            "kmeans_tcr": metrics.kmeans(z_tcr, k, seed=seed),
            "spectral_knn_tcr": metrics.spectral_clustering(metrics.knn_affinity(z_tcr, int(config.knn)), k,
                                                            seed=seed),
            "sinkhorn_spectral_tcr": metrics.spectral_clustering(eval_membership(z_tcr, config), k, seed=seed),
        }
        secs_base = time.perf_counter() - t0

        model = nnx.merge(state.graphdef, state.params, state.rest)
        mlc.copy_feature_head_to_cluster_head(model)
        tx2 = make_tx(config, "mlc", nnx.state(model, nnx.Param), steps2)
        state, secs2 = _fit(model, tx2, mlc_fn, xtr, config, workdir / f"mlc_s{seed}", seed, mesh, steps2, "mlc")
        z_mlc, c_mlc = embed(state, xev, mesh, int(config.eval_batch_size))
        t0 = time.perf_counter()
        gam = eval_membership(c_mlc, config)
        pred["mlc"] = metrics.spectral_clustering(gam, k, seed=seed)
        pred["kmeans_mlc"] = metrics.kmeans(z_mlc, k, seed=seed)
        secs_mlc_eval = time.perf_counter() - t0

        record = {"seed": seed}
        for name, p in pred.items():
            base = name != "mlc"
            acc, nmi = metrics.clustering_accuracy(yev, p), metrics.normalized_mutual_info(yev, p)
            sweep.add(f"{name}_acc", acc, seed=seed, baseline=base, higher_is_better=True)
            sweep.add(f"{name}_nmi", nmi, seed=seed, baseline=base, higher_is_better=True)
            record[name] = {"acc": acc, "nmi": nmi}
        x_flat = xev.reshape(len(xev), -1)
        for name, feats in (("input", x_flat), ("z_tcr", z_tcr), ("z_mlc", z_mlc)):
            r = class_ranks(feats, yev)
            diag.add(f"{name}_median_class_rank", float(np.median(r)), seed=seed)
            diag.add(f"{name}_overall_rank", metrics.numerical_rank(feats), seed=seed)
            diag.add(f"{name}_cross_class_abs_cos", cross_class_cos(feats, yev), seed=seed)
            if seed == config.seeds[0]:
                rank_lists[name] = r
                spectra[name] = [np.linalg.svd(feats[yev == c] / np.maximum(
                    np.linalg.norm(feats[yev == c], axis=1, keepdims=True), 1e-12), compute_uv=False)
                    for c in np.unique(yev)]
        diag.add("tcr_seconds", secs1, seed=seed)
        diag.add("mlc_seconds", secs2, seed=seed)
        diag.add("baseline_clustering_seconds", secs_base, seed=seed)
        diag.add("mlc_inference_seconds", secs_mlc_eval, seed=seed)
        diag.add("gamma_row_sum_err", float(np.abs(gam.sum(1) - 1).max()), seed=seed)
        diag.add("gamma_col_sum_err", float(np.abs(gam.sum(0) - 1).max()), seed=seed)
        diag.add("gamma_nnz_per_row_1e-3", float((gam > 1e-3).sum(1).mean()), seed=seed)
        per_seed_records.append(record)

    headline = sweep.metrics()
    d = {m.name: m for m in diag.metrics()}
    extras = {"total_seconds": time.perf_counter() - t_start, "data": source, "num_clusters": k,
              "diagnostics": {n: {"mean": m.mean, "values": list(m.values)} for n, m in d.items()}}
    rows = []
    for name in ("input", "z_tcr", "z_mlc"):
        rows.append([name, d[f"{name}_median_class_rank"].mean, d[f"{name}_overall_rank"].mean,
                     d[f"{name}_cross_class_abs_cos"].mean])
    tables = {"linearising: per-class numerical rank (95 % energy) and between-class |cos|, mean over seeds":
              markdown_table(["features", "median per-class rank", "overall rank", "mean |cos| across classes"],
                             rows)}
    (workdir / "mlc_results.json").write_text(json.dumps({"per_seed": per_seed_records, "data": source}, indent=2))
    artifacts = {"per_seed": str(workdir / "mlc_results.json")}
    if spectra:
        png = workdir / "mlc_spectra.png"
        _plot(png, spectra, rank_lists)
        artifacts["spectra_png"] = str(png)
    return Result(headline, extras=extras, artifacts=artifacts, tables=tables)
