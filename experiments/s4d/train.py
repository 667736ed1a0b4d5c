"""S4D sequence classification: sequential Fashion-MNIST, sequential CIFAR-10 and LRA ListOps.

``config.dataset`` (default ``"fashion_mnist"``) selects the task:

* ``"fashion_mnist"`` (presets smoke / cpu): 784 grey-level pixels fed one at a time (L = 784, d_input = 1), seeded
  train / test subsets, final test accuracy.
* ``"cifar10"`` (preset paper: the LRA Image recipe of ``configs/experiment/lra/s4-cifar.yaml``): the CIFAR-10 python
  pickles in ``config.data_dir``; L = 1024 pixels in raster order, grey levels (``grayscale=True``: PIL's
  ``L = (19595 R + 38470 G + 7471 B + 2^15) >> 16``, then normalised by 122.6 / 61.0 as the official
  ``torchvision`` pipeline) or RGB (d_input = 3, per-channel mean / std of the official code). 10 % of the training
  images are held out for validation (``val_split``, ``val_seed``; the official split uses torch's generator with
  seed 42, ours NumPy's: same sizes, other images).
* ``"listops"`` (study ``s4d.listops``): the LRA TSV files in ``config.data_dir``, or with ``data_dir=""`` and
  ``listops_generate_n > 0`` that many expressions from :func:`eigenkit.data.listops_generate` (80 / 10 / 10 %
  train / val / test); token ids padded to ``l_max``, an embedding encoder and the mean pool restricted to the valid
  positions (official ``use_lengths``).

For CIFAR-10 and ListOps the validation accuracy is evaluated every ``eval_every`` steps (one epoch in the paper
presets) and the test accuracy at the end. The model and optimiser follow the official code (encoder -> residual S4D
blocks with GLU output -> pooling -> decoder; AdamW with the SSM parameters on their own learning rate and zero weight
decay, warm-up + cosine schedule; see :func:`eigenkit.methods.s4d.s4d_param_labels` for the official groups).
Baseline in the same run: multinomial logistic regression on the pixels (images) or on the token counts (ListOps).
"""

from __future__ import annotations

import enum

import jax
import ml_collections
import numpy as np
from flax import nnx

from eigenkit import data, ssm, train
from eigenkit.methods.s4d import Norm, S4DModel, SSMOutputParam, SSMParam, Transform, s4d_optimizer
from experiments._contract import Result, SeedSweep, config_enum

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics (on [0, 1])
# official src/dataloaders/basic.py (CIFAR10.setup): grayscale and RGB normalisation on [0, 1]
CIFAR_GRAY_MEAN, CIFAR_GRAY_STD = 122.6 / 255.0, 61.0 / 255.0
CIFAR_RGB_MEAN, CIFAR_RGB_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


class Dataset(enum.Enum):
    """The task of a run (``config.dataset``)."""

    FASHION_MNIST = "fashion_mnist"
    CIFAR10 = "cifar10"
    LISTOPS = "listops"


def load(config):
    """Seeded subsets of the Fashion-MNIST train / test splits as (n, 784, 1) float32 sequences."""
    xtr, ytr = data.fashion_mnist("train")
    xte, yte = data.fashion_mnist("test")
    rng = np.random.default_rng(config.seed)
    itr = rng.permutation(len(xtr))[: config.n_train]
    ite = rng.permutation(len(xte))[: config.n_test]

    def prep(x):
        return ((x.reshape(len(x), 784, 1).astype(np.float32) / 255.0) - MEAN) / STD

    return prep(xtr[itr]), ytr[itr].astype(np.int32), prep(xte[ite]), yte[ite].astype(np.int32)


def _subset(n_all: int, n: int) -> int:
    """``n`` examples of ``n_all`` (``0``: all)."""
    if n < 0 or n > n_all:
        raise ValueError(f"a subset size must be in 0..{n_all} (0 = all), got {n}")
    return n or n_all


def cifar_sequences(images: np.ndarray, *, grayscale: bool) -> np.ndarray:
    """uint8 ``(n, 32, 32, 3)`` -> float32 ``(n, 1024, 1)`` (grey) or ``(n, 1024, 3)`` (RGB), raster order, normalised
    as the official ``CIFAR10`` dataset (``Grayscale`` = PIL's ITU-R 601-2 luma in fixed point)."""
    x = images.astype(np.int64)
    if grayscale:
        luma = (x[..., 0] * 19595 + x[..., 1] * 38470 + x[..., 2] * 7471 + 0x8000) >> 16
        seq = luma.reshape(len(x), 1024, 1).astype(np.float32) / np.float32(255.0)
        return (seq - np.float32(CIFAR_GRAY_MEAN)) / np.float32(CIFAR_GRAY_STD)
    seq = x.reshape(len(x), 1024, 3).astype(np.float32) / np.float32(255.0)
    return (seq - np.asarray(CIFAR_RGB_MEAN, np.float32)) / np.asarray(CIFAR_RGB_STD, np.float32)


def load_cifar10(config) -> dict[str, dict[str, np.ndarray]]:
    """Train / val / test of CIFAR-10 from ``config.data_dir`` as ``{"x": (n, 1024, c), "y": (n,)}``."""
    root = config.data_dir or None
    xtr, ytr = data.cifar10("train", root=root)
    xte, yte = data.cifar10("test", root=root)
    perm = np.random.default_rng(config.val_seed).permutation(len(xtr))
    train_len = int(len(xtr) * (1.0 - config.val_split))  # official split_train_val
    itr, iva = perm[:train_len], perm[train_len:]
    itr, iva = itr[: _subset(len(itr), config.n_train)], iva[: _subset(len(iva), config.n_val)]
    ite = np.arange(_subset(len(xte), config.n_test))

    def split(x, y, idx):
        return {"x": cifar_sequences(x[idx], grayscale=config.grayscale), "y": y[idx].astype(np.int32)}

    return {"train": split(xtr, ytr, itr), "val": split(xtr, ytr, iva), "test": split(xte, yte, ite)}


def load_listops(config) -> dict[str, dict[str, np.ndarray]]:
    """Train / val / test of ListOps as ``{"x": (n, l_max) int32, "lengths": (n,), "y": (n,)}``: the TSV files of
    ``config.data_dir``, or ``config.listops_generate_n`` generated expressions (80 / 10 / 10 %)."""
    l_max = int(config.l_max)
    if config.data_dir:
        parts = {s: data.listops(s, root=config.data_dir, l_max=l_max) for s in ("train", "val", "test")}
    elif config.listops_generate_n > 0:
        n = int(config.listops_generate_n)
        sources, targets = data.listops_generate(
            n, seed=int(config.listops_seed), max_depth=int(config.listops_max_depth),
            max_args=int(config.listops_max_args), min_length=int(config.listops_min_length),
            max_length=int(config.listops_max_length))
        n_tr, n_va = int(0.8 * n), int(0.1 * n)
        cuts = {"train": slice(0, n_tr), "val": slice(n_tr, n_tr + n_va), "test": slice(n_tr + n_va, n)}
        parts = {s: data.listops_encode(sources[c], targets[c], l_max=l_max) for s, c in cuts.items()}
    else:
        raise data.MissingDataError(
            "ListOps: set config.data_dir to the LRA listops-1000 folder (basic_{train,val,test}.tsv, from "
            "lra_release.gz of https://github.com/google-research/long-range-arena), or keep data_dir='' and set "
            "config.listops_generate_n > 0 to generate a replica offline")
    out = {}
    for split, (tokens, lengths, labels) in parts.items():
        n = _subset(len(labels), int(config.get(f"n_{split}", 0)))
        out[split] = {"x": tokens[:n], "lengths": lengths[:n], "y": labels[:n]}
    return out


def make_model(config, d_input: int = 1, *, tokens: bool = False, d_output: int = 10) -> S4DModel:
    """The model of ``config``; keys absent from the config (the Fashion-MNIST presets) keep the layer defaults."""
    n_ssm = int(config.get("n_ssm", 0))
    return S4DModel(
        d_input, d_output,
        d_model=config.d_model, d_state=config.d_state, n_layers=config.n_layers, dropout=config.dropout,
        prenorm=config.prenorm, norm=config_enum(Norm, config.norm, key="norm"),
        init=config_enum(ssm.Init, config.init, key="init"),
        discretization=config_enum(ssm.Discretization, config.discretization, key="discretization"),
        dt_min=config.dt_min, dt_max=config.dt_max, tokens=tokens,
        bidirectional=bool(config.get("bidirectional", False)), n_ssm=n_ssm or None,
        dt_transform=config_enum(Transform, config.get("dt_transform", "exp"), key="dt_transform"),
        rngs=nnx.Rngs(config.seed),
    )


def make_precision(config) -> train.Precision:
    """``config.compute_dtype`` (default float32) for everything but the SSM parameters (``dt``, ``A``, ``B``,
    ``C``), which stay float32 so the kernel's phases are not rounded; the FFT convolution runs in float32 too."""
    return train.Precision.from_config(config, keep_float32=(SSMParam, SSMOutputParam))


def make_optimizer(config, model: S4DModel):
    return s4d_optimizer(
        nnx.state(model, nnx.Param), lr=config.learning_rate, weight_decay=config.weight_decay,
        ssm_lr=config.ssm_lr, total_steps=config.num_steps, warmup_steps=config.warmup_steps,
        c_with_ssm_lr=config.c_with_ssm_lr, dt_with_ssm_lr=bool(config.get("dt_with_ssm_lr", True)),
        decay_bias_and_norm=bool(config.get("decay_bias_and_norm", True)),
    )


loss_fn, metric_fn = train.classifier_fns(dropout=True)


def masked_loss_fn(model, batch, key):
    """Cross-entropy of ``model(x, lengths=...)`` (pooling over the valid positions only)."""
    logits = model(batch["x"], lengths=batch["lengths"], rngs=nnx.Rngs(dropout=key))
    return train.classification_loss(logits, batch["y"])


def masked_metric_fn(model, batch):
    return train.classification_metrics(model(batch["x"], lengths=batch["lengths"]), batch["y"], batch["mask"])


def _logreg(x_train, y_train, x_test, y_test, max_iter: int) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # a fixed iteration budget is the point of this baseline
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(max_iter=max_iter).fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


def _token_counts(tokens: np.ndarray) -> np.ndarray:
    """Bag-of-tokens features ``(n, |vocab|)`` without the padding id, scaled by the sequence length."""
    counts = np.stack([(tokens == v).sum(1) for v in range(1, len(data.LISTOPS_VOCAB))], 1).astype(np.float32)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    dataset = config_enum(Dataset, config.get("dataset", "fashion_mnist"), key="dataset")
    if dataset is Dataset.FASHION_MNIST:
        return _fashion_mnist(config, workdir)
    return _with_validation(config, workdir, dataset)


def _fashion_mnist(config, workdir) -> Result:
    xtr, ytr, xte, yte = load(config)
    model = make_model(config)
    tx = make_optimizer(config, model)
    state, test = train.fit_and_evaluate(model, tx, loss_fn, train_data={"x": xtr, "y": ytr}, config=config,
                                         workdir=workdir, seed=config.seed, metric_fn=metric_fn,
                                         eval_data={"x": xte, "y": yte}, desc="s4d train")
    sweep = SeedSweep()
    sweep.add("test_accuracy", test["accuracy"], seed=config.seed, higher_is_better=True)
    extras = {"num_params": int(sum(v.size for v in jax.tree.leaves(state.params)))}
    if config.baseline:
        sweep.add("logreg_test_accuracy", _logreg(xtr[..., 0], ytr, xte[..., 0], yte, config.baseline_max_iter),
                  seed=config.seed, baseline=True, higher_is_better=True)
    return Result(sweep.metrics(), extras=extras)


def _with_validation(config, workdir, dataset: Dataset) -> Result:
    if dataset is Dataset.CIFAR10:
        splits = load_cifar10(config)
        model = make_model(config, splits["train"]["x"].shape[-1])
        fns = (loss_fn, metric_fn)
    else:
        splits = load_listops(config)
        model = make_model(config, len(data.LISTOPS_VOCAB), tokens=True)
        fns = (masked_loss_fn, masked_metric_fn)
    tx = make_optimizer(config, model)
    mesh = train.make_mesh()
    precision = make_precision(config)
    state, val = train.fit_and_evaluate(model, tx, fns[0], train_data=splits["train"], config=config,
                                        precision=precision, workdir=workdir, seed=config.seed, metric_fn=fns[1],
                                        eval_data=splits["val"], mesh=mesh, desc=f"s4d {dataset.value}")
    eval_step = train.make_eval_step(fns[1], mesh=mesh, precision=precision)
    test = train.evaluate_dataset(state, eval_step, splits["test"], mesh,
                                  int(config.get("eval_batch_size", config.batch_size)))
    sweep = SeedSweep()
    sweep.add("test_accuracy", test["accuracy"], seed=config.seed, higher_is_better=True)
    sweep.add("val_accuracy", val["accuracy"], seed=config.seed, higher_is_better=True)
    extras = {"num_params": int(sum(v.size for v in jax.tree.leaves(state.params))),
              "seq_len": int(splits["train"]["x"].shape[1]),
              **{f"n_{s}": int(len(splits[s]["y"])) for s in ("train", "val", "test")}}
    if config.baseline:
        tr, te = splits["train"], splits["test"]
        if dataset is Dataset.CIFAR10:
            feats = (tr["x"].reshape(len(tr["x"]), -1), te["x"].reshape(len(te["x"]), -1))
        else:
            feats = (_token_counts(tr["x"]), _token_counts(te["x"]))
        sweep.add("logreg_test_accuracy", _logreg(feats[0], tr["y"], feats[1], te["y"], config.baseline_max_iter),
                  seed=config.seed, baseline=True, higher_is_better=True)
    return Result(sweep.metrics(), extras=extras)
