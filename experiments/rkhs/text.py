"""Study ``rkhs.text``: masked-token augmentation on real text — the mask rate of masked language modelling vs a
linear probe on a real downstream label, with the empirical augmentation complexity beside it (Zhai et al.'s
real-data experiment, at CPU scale; the method's ``paper`` preset runs this code path on the paper's data).

Per mask rate ``α``:
1. **Upstream (RKHS approximation).** A BERT-style encoder ``Ψ`` (``eigenkit.nn.BertEncoder`` + a masked-LM head with
   tied word vectors) is trained with masked language modelling on augmented passages: each real token is replaced by
   ``[MASK]`` independently with probability ``α`` — exactly the i.i.d. masking augmentation ``p(a | x)`` of
   ``rkhs.masking_kernel`` (no BERT 80/10/10 replacement, which would be a different augmentation). The loss is the
   cross-entropy of the original tokens at the masked positions (``eigenkit.train``, data parallel over the mesh).
2. **The average encoder** ``Φ(x) = E[Ψ(A) | x]`` (the paper's encoder for the downstream task): the mean-pooled
   hidden states averaged over ``n_avg`` masked copies of ``x`` at the same ``α``; the plain encoder ``Ψ(x)`` on the
   unmasked passage is reported too.
3. **Downstream (RKHS regression).** A ridge probe (``rkhs.ridge_probe`` on one-hot labels, the ridge chosen on a
   validation split) on ``n_train`` labelled examples; test accuracy.
4. **Augmentation complexity on the data.** ``κ² = sup_x K_X(x, x)`` with ``K_X(x, x) = E_{a~p(·|x)}[p(a|x) / p(a)]``
   under the empirical distribution of ``n_ref`` passages: ``p(a|x)/p(a) = n_ref / #{x' : x' agrees with a on
   every unmasked position}`` (the masking factors ``α^m (1−α)^(T−m)`` cancel), estimated with ``kappa_masks`` masks
   per passage for ``kappa_points`` passages. Its largest possible value is ``n_ref`` (every augmentation still
   identifies its passage); the paper reports κ astronomically large for MLM on real text, which this estimate
   shows at the scale of the sample.

Baselines in the same run, on the same splits: a ridge probe on bag-of-words counts of the raw passage, and the same
encoder with random (untrained) weights.

Data: ``source="austen"`` — non-overlapping windows of ``length`` word tokens of the six Austen novels
(``eigenkit.data.austen_books``; ``apt-get download r-cran-janeaustenr``), label = the novel; the labelled and test
windows are held out of pre-training. ``source="glue"`` (the paper preset) — pre-training lines from
``config.corpus`` (a wikipedia-simple text dump, one document per line), probes on GLUE ``config.tasks`` read from
``config.glue_dir`` (SST-2 / QNLI TSV; dev = test).
"""

from __future__ import annotations

import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import data, train
from eigenkit.methods import rkhs
from eigenkit.nn import BertConfig, BertEncoder
from experiments._contract import Result, SeedSweep, markdown_table

PRESETS = ("smoke", "cpu")
PAD, MASK = data.WordVocab.PAD, data.WordVocab.MASK


def get_config(preset: str) -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    c = ml_collections.ConfigDict(dict(
        description="spectral-contrastive encoder on masked Austen passages per mask rate, ridge probe of the average "
                    "encoder on the novel label; empirical kappa^2 beside it; baselines bag-of-words, random encoder",
        expected_runtime="~4-5 min on 2 CPU cores",
        source="austen", corpus="", glue_dir="", tasks=("novel",),
        length=32, vocab_size=2000, n_train_per_class=100, n_val_per_class=50, n_test_per_class=200,
        max_pretrain=0,  # 0: every remaining window
        alphas=(0.05, 0.15, 0.3, 0.5, 0.7, 0.9), seeds=(0,),
        encoder="bag", objective="spectral", embed_dim=64,  # bert + mlm: the paper's objective (paper preset)
        hidden=128, num_layers=2, num_heads=4, intermediate=256,
        batch_size=512, num_steps=3000, learning_rate=3e-3, warmup_steps=100, weight_decay=0.01,
        compute_dtype="float32", n_avg=16, embed_batch=512,
        ridges=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), n_ref=8192, kappa_points=256, kappa_masks=8,
        log_every=200, checkpoint_every=0, show_progress=False, data_seed=0, plot=True,
    ))
    if preset == "smoke":
        c.update(dict(description="rkhs.text smoke", expected_runtime="~15 s", length=16, vocab_size=300,
                      n_train_per_class=10, n_val_per_class=5, n_test_per_class=10, max_pretrain=512,
                      alphas=(0.15, 0.5), hidden=16, num_layers=1, num_heads=2, intermediate=32, batch_size=32,
                      num_steps=6, warmup_steps=2, n_avg=2, embed_batch=128, n_ref=256, kappa_points=16,
                      kappa_masks=2, log_every=3, plot=False))
    return c


# ----------------------------------------------------------------------------------------------------------- data
def _austen(config):
    books = data.austen_books()
    names = sorted(books)
    t = int(config.length)
    vocab = data.WordVocab.build((books[n] for n in names), int(config.vocab_size))
    rng = np.random.default_rng(int(config.data_seed))
    counts = (int(config.n_train_per_class), int(config.n_val_per_class), int(config.n_test_per_class))
    splits = [[], [], []]
    pretrain = []
    for lab, name in enumerate(names):
        ids = np.asarray(vocab.ids(books[name]), np.int32)
        win = ids[:len(ids) // t * t].reshape(-1, t)
        perm = rng.permutation(len(win))
        if len(win) < sum(counts) + 1:
            raise ValueError(f"{name}: only {len(win)} windows of {t} tokens, need more than {sum(counts)}")
        cut = np.cumsum((0, *counts))
        for j in range(3):
            splits[j].append((win[perm[cut[j]:cut[j + 1]]], np.full(counts[j], lab, np.int32)))
        pretrain.append(win[perm[cut[-1]:]])
    pre = np.concatenate(pretrain)
    pre = pre[rng.permutation(len(pre))]
    if int(config.max_pretrain):
        pre = pre[:int(config.max_pretrain)]
    tasks = {"novel": tuple(np.concatenate([s[k] for s in splits[j]]) for j in range(3) for k in (0, 1))}
    return vocab, pre, tasks, len(names)


def _glue(config):
    t = int(config.length)
    if not config.corpus or not config.glue_dir:
        raise ValueError("source='glue' needs --config.corpus=FILE (pre-training text, one document per line) and "
                         "--config.glue_dir=DIR (GLUE's SST-2/ and/or QNLI/ folders)")
    lines = data.read_text_lines(config.corpus, max_lines=int(config.max_pretrain) or None)
    vocab = data.WordVocab.build(lines, int(config.vocab_size))
    pre, mask = vocab.encode(lines, t)
    pre = pre[mask.sum(1) >= min(8, t)]  # drop near-empty lines
    rng = np.random.default_rng(int(config.data_seed))
    tasks = {}
    for task in config.tasks:
        texts, y = data.read_glue(config.glue_dir, task, "train")
        dev_texts, dev_y = data.read_glue(config.glue_dir, task, "dev")
        x, _ = vocab.encode(texts, t)
        xd, _ = vocab.encode(dev_texts, t)
        perm = rng.permutation(len(y))
        n_val = max(1, len(y) // 10)
        n_tr = int(config.n_train_per_class) * 2 if int(config.n_train_per_class) else len(y) - n_val
        tr, va = perm[n_val:n_val + n_tr], perm[:n_val]
        tasks[task] = (x[tr], y[tr], x[va], y[va], xd, dev_y)
    return vocab, pre[rng.permutation(len(pre))], tasks, 2


def load(config):
    """``(vocab, pretrain ids (N, T), {task: (x_tr, y_tr, x_val, y_val, x_te, y_te)}, n_classes)``."""
    src = str(config.source)
    if src == "austen":
        return _austen(config)
    if src == "glue":
        return _glue(config)
    raise ValueError(f"config.source must be 'austen' or 'glue', got {src!r}")


def augment(rng: np.random.Generator, x: np.ndarray, alpha: float) -> np.ndarray:
    """i.i.d. masking of the real (non-PAD) tokens with probability ``alpha``."""
    return np.where((rng.random(x.shape) < alpha) & (x != PAD), MASK, x).astype(np.int32)


# ---------------------------------------------------------------------------------------------------------- model
def _pool(h, ids, drop_mask: bool = False):
    keep = ids != PAD
    if drop_mask:
        keep = keep & (ids != MASK)
    m = keep.astype(h.dtype)[..., None]
    return jnp.sum(h * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), jnp.asarray(1.0, h.dtype))


class MaskedLM(nnx.Module):
    """``BertEncoder`` + BERT's LM head (dense, GELU, LayerNorm, tied word vectors + bias); ``features`` = the
    mean-pooled last hidden states over the real tokens (``Ψ(a)``)."""

    def __init__(self, config: BertConfig, *, rngs: nnx.Rngs):
        self.encoder = BertEncoder(config, rngs=rngs)
        self.dense = nnx.Linear(config.hidden, config.hidden, rngs=rngs)
        self.norm_scale = nnx.Param(jnp.ones((config.hidden,), jnp.float32))
        self.norm_bias = nnx.Param(jnp.zeros((config.hidden,), jnp.float32))
        self.eps = float(config.norm_eps)
        self.bias = nnx.Param(jnp.zeros((config.vocab_size,), jnp.float32))

    def hidden(self, ids):
        return self.encoder(ids, ids != PAD)

    def features(self, ids):
        return _pool(self.hidden(ids), ids)

    def __call__(self, ids):
        h = jax.nn.gelu(self.dense(self.hidden(ids)), approximate=False)
        h32 = h.astype(jnp.float32)  # LayerNorm statistics in float32 under a bfloat16 policy
        mu = jnp.mean(h32, -1, keepdims=True)
        z = ((h32 - mu) * jax.lax.rsqrt(jnp.mean(jnp.square(h32 - mu), -1, keepdims=True) + self.eps)).astype(h.dtype)
        h = z * self.norm_scale[...].astype(h.dtype) + self.norm_bias[...].astype(h.dtype)
        return h @ self.encoder.word[...].T.astype(h.dtype) + self.bias[...].astype(h.dtype)


class BertSpectral(nnx.Module):
    """``BertEncoder``, mean pooling and a linear map to ``d``: ``Ψ(a)`` for the spectral contrastive loss."""

    def __init__(self, config: BertConfig, d: int, *, rngs: nnx.Rngs):
        self.encoder = BertEncoder(config, rngs=rngs)
        self.proj = nnx.Linear(config.hidden, d, rngs=rngs)

    def features(self, ids):
        return self.proj(_pool(self.encoder(ids, ids != PAD), ids))


class BagEncoder(nnx.Module):
    """Mean word vector of the unmasked tokens, then an MLP to ``d`` (a fastText-style ``Ψ(a)``: the masked tokens
    contribute nothing, so ``Ψ`` sees exactly what the augmentation keeps)."""

    def __init__(self, vocab_size: int, width: int, hidden: int, d: int, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab_size, width, rngs=rngs)
        self.l1 = nnx.Linear(width, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, d, rngs=rngs)

    def features(self, ids):
        return self.out(jax.nn.relu(self.l1(_pool(self.embed(ids), ids, drop_mask=True))))


def _mlm_loss(model, batch, key):
    del key
    logits = model(batch["a"]).astype(jnp.float32)
    sel = (batch["a"] == MASK).astype(jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["x"])
    n = jnp.maximum(jnp.sum(sel), 1.0)
    acc = jnp.sum((jnp.argmax(logits, -1).astype(batch["x"].dtype) == batch["x"]).astype(jnp.float32) * sel) / n
    return jnp.sum(nll * sel) / n, {"masked_acc": acc}


def _spectral_loss(model, batch, key):
    del key
    z1, z2 = model.features(batch["a"]), model.features(batch["a2"])
    return rkhs.spectral_contrastive_loss(z1.astype(jnp.float32), z2.astype(jnp.float32)), {}


def make_model(config, vocab_size: int, seed: int):
    enc, obj = str(config.encoder), str(config.objective)
    if obj not in ("mlm", "spectral"):
        raise ValueError(f"config.objective must be 'mlm' or 'spectral', got {obj!r}")
    if enc == "bag":
        if obj != "spectral":
            raise ValueError("config.encoder='bag' has no token outputs: use config.objective='spectral'")
        return BagEncoder(vocab_size, int(config.hidden), int(config.intermediate), int(config.embed_dim),
                          rngs=nnx.Rngs(seed))
    if enc != "bert":
        raise ValueError(f"config.encoder must be 'bert' or 'bag', got {enc!r}")
    c = bert_config(config, vocab_size)
    return MaskedLM(c, rngs=nnx.Rngs(seed)) if obj == "mlm" else BertSpectral(c, int(config.embed_dim),
                                                                             rngs=nnx.Rngs(seed))


# -------------------------------------------------------------------------------------------------------- probing
def _embed(model, ids, batch: int, rng=None, alpha: float = 0.0, n_avg: int = 1) -> np.ndarray:
    f = nnx.jit(lambda m, a: m.features(a))
    out = []
    for i in range(0, len(ids), batch):
        xb = ids[i:i + batch]
        acc = 0.0
        for _ in range(n_avg):
            acc = acc + np.asarray(f(model, jnp.asarray(augment(rng, xb, alpha) if rng is not None else xb)),
                                   np.float64)
        out.append(acc / n_avg)
    return np.concatenate(out)


def _bow(ids, v: int) -> np.ndarray:
    out = np.zeros((len(ids), v), np.float64)
    np.add.at(out, (np.repeat(np.arange(len(ids)), ids.shape[1]), ids.ravel()), 1.0)
    out[:, PAD] = 0.0
    return np.log1p(out)


def probe_accuracy(f_tr, y_tr, f_va, y_va, f_te, y_te, n_classes: int, ridges) -> tuple[float, float, float]:
    """Ridge probe on one-hot labels, ridge chosen on the validation split: ``(test acc, val acc, ridge)``."""
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-8
    z = [(f - mu) / sd for f in (f_tr, f_va, f_te)]
    onehot = np.eye(n_classes)[y_tr]
    best = None
    with jax.enable_x64(True):
        for lam in ridges:
            pv, pt = (np.asarray(rkhs.ridge_probe(jnp.asarray(z[0]), jnp.asarray(onehot), jnp.asarray(zz),
                                                  float(lam))) for zz in (z[1], z[2]))
            va = float(np.mean(pv.argmax(1) == y_va))
            if best is None or va > best[1]:
                best = (float(np.mean(pt.argmax(1) == y_te)), va, float(lam))
    return best


def empirical_kappa_sq(ref: np.ndarray, alpha: float, n_points: int, n_masks: int, seed: int) -> tuple[float, float]:
    """``(max, mean)`` over ``n_points`` passages of ``K_X(x, x)`` under the empirical distribution of ``ref``.

    ``K_X(x, x) = E_{a~p(·|x)}[p(a|x)/p(a)]`` with ``p(a) = (1/n) Σ_x' p(a|x')``; for i.i.d. masking
    ``p(a|x') = α^m (1−α)^(T−m) 1[x' agrees with a off the mask]`` (pads are never masked), so the ratio is
    ``n / #matches``. Every ``x`` is in ``ref``, so ``#matches >= 1`` and the value is at most ``n``.
    """
    rng = np.random.default_rng([seed, 13])
    pts = ref[rng.choice(len(ref), min(n_points, len(ref)), replace=False)]
    vals = np.zeros(len(pts))
    for _ in range(n_masks):
        a = augment(rng, pts, alpha)
        for i in range(0, len(pts), 32):
            ab = a[i:i + 32]
            keep = ab != MASK
            match = np.all((ref[None, :, :] == ab[:, None, :]) | ~keep[:, None, :], axis=-1).sum(1)
            vals[i:i + 32] += len(ref) / match / n_masks
    return float(vals.max()), float(vals.mean())


# ---------------------------------------------------------------------------------------------------------- runs
def bert_config(config, vocab_size: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden=int(config.hidden), num_layers=int(config.num_layers),
                      num_heads=int(config.num_heads), intermediate=int(config.intermediate),
                      max_positions=int(config.length), type_vocab_size=1)


def pretrain(config, pre: np.ndarray, vocab_size: int, alpha: float, seed: int, workdir: str):
    model = make_model(config, vocab_size, seed)
    mlm = str(config.objective) == "mlm"
    mesh = train.make_mesh()
    precision = train.Precision.from_config(config)
    steps = int(config.num_steps)
    sched = optax.warmup_cosine_decay_schedule(0.0, float(config.learning_rate), int(config.warmup_steps),
                                               max(steps, int(config.warmup_steps) + 1))
    state = train.TrainState.create(model, optax.adamw(sched, weight_decay=float(config.weight_decay)), mesh=mesh)
    step = train.make_train_step(_mlm_loss if mlm else _spectral_loss, mesh=mesh, precision=precision)
    bs = int(config.batch_size)

    def batches(s: int):
        rng = np.random.default_rng([seed, int(round(alpha * 1000)), s])
        xb = pre[rng.integers(0, len(pre), bs)]
        if mlm:
            return {"x": xb, "a": augment(rng, xb, alpha)}
        return {"a": augment(rng, xb, alpha), "a2": augment(rng, xb, alpha)}

    sub = train.subrun_config(config, drop=("alphas", "seeds"), alpha=float(alpha), seed=int(seed))
    state, hist = train.fit(state, step, batches=batches, num_steps=steps, workdir=workdir, config=sub, mesh=mesh,
                            seed=seed, log_every=int(config.log_every), checkpoint_every=int(config.checkpoint_every),
                            show_progress=bool(config.show_progress))
    return state.model(), hist


def _probe_all(config, model, tasks, n_classes, rng, alpha, n_avg):
    out = {}
    for name, (xtr, ytr, xva, yva, xte, yte) in tasks.items():
        feats = [_embed(model, x, int(config.embed_batch), rng, alpha, n_avg) for x in (xtr, xva, xte)]
        out[name] = probe_accuracy(feats[0], ytr, feats[1], yva, feats[2], yte, n_classes, config.ridges)[0]
    return out


def _plot(path: pathlib.Path, config, cells: dict, tasks) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = np.asarray(config.alphas, float)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in tasks:
        acc = np.array([[cells[f"a{a}_s{s}"]["avg_encoder_acc"][name] for a in alphas] for s in config.seeds])
        line = ax.plot(alphas, acc.mean(0), "o-", ms=3, label=f"{name}: average encoder")[0]
        ax.axhline(np.mean([cells[f"{name}_bow_s{s}"] for s in config.seeds]), ls=":", color=line.get_color(),
                   label=f"{name}: bag of words")
        ax.axhline(np.mean([cells[f"{name}_random_s{s}"] for s in config.seeds]), ls="-.", lw=1,
                   color=line.get_color(), label=f"{name}: random encoder")
    ax.set(xlabel="mask rate α", ylabel="probe test accuracy", title=f"Masked-token SSL on {config.source} text")
    tw = ax.twinx()
    kap = np.array([[cells[f"a{a}_s{s}"]["kappa_sq_mean"] for a in alphas] for s in config.seeds]).mean(0)
    tw.plot(alphas, kap, "k--", lw=1)
    tw.set(yscale="log", ylabel=f"empirical κ² mean (dashed; max = n_ref = {int(config.n_ref)})")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def train_and_evaluate(config, workdir: str) -> Result:
    wd = pathlib.Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    vocab, pre, tasks, n_classes = load(config)
    v = len(vocab)
    sweep, rows, cells = SeedSweep(), [], {}
    for seed in config.seeds:
        seed = int(seed)
        # baselines: bag of words on the raw passages; the untrained encoder
        for name, (xtr, ytr, xva, yva, xte, yte) in tasks.items():
            acc = probe_accuracy(*(f for pair in ((_bow(xtr, v), ytr), (_bow(xva, v), yva), (_bow(xte, v), yte))
                                   for f in pair), n_classes, config.ridges)[0]
            sweep.add(f"{name}_acc_bow", acc, seed=seed, baseline=True, higher_is_better=True)
            cells[f"{name}_bow_s{seed}"] = acc
        rand = make_model(config, v, seed)
        for name, acc in _probe_all(config, rand, tasks, n_classes, None, 0.0, 1).items():
            sweep.add(f"{name}_acc_random_encoder", acc, seed=seed, baseline=True, higher_is_better=True)
            cells[f"{name}_random_s{seed}"] = acc
        ref = pre[:int(config.n_ref)]
        for alpha in config.alphas:
            alpha = float(alpha)
            t0 = time.perf_counter()
            model, hist = pretrain(config, pre, v, alpha, seed, str(wd / f"a{alpha}_s{seed}"))
            t_train = time.perf_counter() - t0
            rng = np.random.default_rng([seed, 29, int(round(alpha * 1000))])
            avg = _probe_all(config, model, tasks, n_classes, rng, alpha, int(config.n_avg))
            plain = _probe_all(config, model, tasks, n_classes, None, 0.0, 1)
            k_max, k_mean = empirical_kappa_sq(ref, alpha, int(config.kappa_points), int(config.kappa_masks), seed)
            last = hist[-1] if hist else {}
            cell = {"avg_encoder_acc": avg, "plain_encoder_acc": plain, "kappa_sq_max": k_max,
                    "kappa_sq_mean": k_mean, "n_ref": len(ref), "final_loss": float(last.get("loss", math.nan)),
                    "masked_acc": float(last.get("masked_acc", math.nan)), "pretrain_s": t_train}
            cells[f"a{alpha}_s{seed}"] = cell
            for name in tasks:
                sweep.add(f"{name}_acc_a{alpha}", avg[name], seed=seed, higher_is_better=True)
                sweep.add(f"{name}_acc_plain_a{alpha}", plain[name], seed=seed, higher_is_better=True)
            sweep.add(f"kappa_sq_mean_a{alpha}", k_mean, seed=seed, higher_is_better=False)
            rows.append([alpha, seed, *(avg[n] for n in tasks), *(plain[n] for n in tasks), k_mean, k_max,
                         cell["final_loss"], cell["masked_acc"], round(t_train, 1)])
    header = ["alpha", "seed", *(f"{n} acc (avg encoder)" for n in tasks), *(f"{n} acc (plain)" for n in tasks),
              f"kappa^2 mean (max {len(ref)})", "kappa^2 max", "final loss", "masked-token acc", "pretrain s"]
    base = [[n, cells[f"{n}_bow_s{s}"], cells[f"{n}_random_s{s}"], s] for n in tasks for s in config.seeds]
    text = (markdown_table(header, rows) + "\n\nBaselines (same splits):\n\n"
            + markdown_table(["task", "bag-of-words acc", "random-encoder acc", "seed"], base) + "\n")
    (wd / "text.md").write_text(text)
    artifacts = {"table": str(wd / "text.md")}
    if config.get("plot", True):
        artifacts["plot"] = _plot(wd / "text.png", config, cells, tasks)
    return Result(sweep.metrics(), extras={"cells": cells, "vocab_size": v, "n_pretrain": len(pre),
                                           "n_classes": n_classes}, artifacts=artifacts)
