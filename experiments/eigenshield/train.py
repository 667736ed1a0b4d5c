"""EigenShield-style (reconstructed) causal-subspace filtering of a real image encoder's embeddings under PGD attacks.

Per seed:

1. **Encoder + head**: ``SmallCNN`` (BatchNorm, linear output: the embedding) and a linear classifier head, trained on
   Fashion-MNIST with ``eigenkit.train`` (cross-entropy, Adam, cosine schedule).
2. **Calibration**: embeddings of ``n_cal`` clean training images *not used for training*;
   ``eigenshield.fit`` (covariance spectrum, Marchenko–Pastur bulk edge, spikes, robustness-based nonconformity
   scores, conformal threshold, causal subspace; the reconstruction of ``eigenkit.methods.eigenshield``).
3. **Defences** of the same rank ``r = |causal set|``, all filtering the embedding before the (unchanged) head:
   ``none`` (identity), ``eigenshield`` (causal subspace), ``pca`` (top-r principal subspace), ``random`` (a seeded
   random r-dim subspace); each ``e' = μ + P (e − μ)``.
4. **Attacks**: PGD, L∞ in pixel space ([0, 1], ``eps`` in 1/255 units), ``pgd_steps`` steps of ``2.5 eps / steps``
   from a uniform random start, untargeted (ascent on the cross-entropy). *Non-adaptive*: crafted on the undefended
   model, then fed to every defence (the defence is unknown to the attacker). *Adaptive*: crafted through the defended
   pipeline itself (the projection is differentiable; no BPDA needed).
5. **Metrics** on ``n_test`` test images: clean accuracy of each pipeline, and attack success rate
   ``ASR = P(adversarial misclassified | clean correctly classified)`` of each pipeline, per eps and attack.

Writes ``table.md`` / ``table.json`` and ``spectrum.png`` (seed 0: covariance spectrum of the calibration embeddings,
the Marchenko–Pastur density at the estimated noise level, the bulk edge, spikes and the causal set).
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

from eigenkit import data, train
from eigenkit import linalg as la
from eigenkit.methods import eigenshield
from eigenkit.nn import SmallCNN
from experiments._contract import Result, SeedSweep, markdown_table
from experiments.eigenshield._report import DEFENCES, add_seed_metrics, defence_table

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


class Net(nnx.Module):
    """Image encoder (the embedding the defence filters) + linear classifier head."""

    def __init__(self, config, *, rngs: nnx.Rngs):
        self.encoder = SmallCNN(1, (28, 28), channels=tuple(config.channels), features=config.features,
                                batch_norm=True, final_relu=False, rngs=rngs)
        self.head = nnx.Linear(config.features, 10, rngs=rngs)

    def embed(self, x01):
        """``x01 [..., 28, 28, 1]`` pixels in [0, 1] → embeddings ``[..., features]``."""
        return self.encoder((x01 - FMNIST_MEAN) / FMNIST_STD)

    def __call__(self, x01):
        return self.head(self.embed(x01))


def load_data(config, seed: int):
    """Seeded disjoint train / calibration subsets of the training split and the first ``n_test`` test images,
    pixels in [0, 1] (NHWC)."""
    xtr, ytr = data.fashion_mnist("train", root=config.get("data_root") or None)
    xte, yte = data.fashion_mnist("test", root=config.get("data_root") or None)
    need = config.n_train + config.n_cal
    if need > len(xtr):
        raise ValueError(f"config.n_train + config.n_cal = {need} exceeds the {len(xtr)} training images")
    perm = np.random.default_rng([seed, 2025]).permutation(len(xtr))
    tr, cal = perm[:config.n_train], perm[config.n_train:need]
    f = lambda x: (x.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    n_test = min(config.n_test, len(xte))
    return {"train": (f(xtr[tr]), ytr[tr].astype(np.int32)), "cal": (f(xtr[cal]), ytr[cal].astype(np.int32)),
            "test": (f(xte[:n_test]), yte[:n_test].astype(np.int32))}


def train_model(config, x, y, seed: int, mesh, workdir: pathlib.Path):
    model = Net(config, rngs=nnx.Rngs(seed))
    num_steps = train.steps_per_run(config, len(x))
    tx = optax.adam(optax.cosine_decay_schedule(config.learning_rate, num_steps))
    loss_fn, metric_fn = train.classifier_fns()
    sub = train.subrun_config(config, drop=("seeds", "eps"), seed=seed)
    state, _ = train.fit_and_evaluate(model, tx, loss_fn, train_data={"x": x, "y": y}, config=sub,
                                      workdir=workdir / f"seed{seed}", seed=seed, mesh=mesh,
                                      desc=f"eigenshield encoder seed {seed}")
    model = nnx.merge(state.graphdef, state.params, state.rest)
    model.eval()
    return model


def _asr(pred_adv: np.ndarray, y: np.ndarray, ok: np.ndarray) -> float:
    """Attack success rate over the clean-correct examples ``ok`` (NaN when there are none, e.g. an untrained model
    on a tiny replica)."""
    return float(np.mean(pred_adv[ok] != y[ok])) if ok.any() else float("nan")


def _batched(fn, arrays, batch_size: int):
    n = len(arrays[0])
    outs = [fn(*(a[i:i + batch_size] for a in arrays)) for i in range(0, n, batch_size)]
    return np.concatenate([np.asarray(o) for o in outs])


def make_pipeline(model: Net):
    """``logits(defence, x01)``, ``embed(x01)`` and ``pgd(defence, x01, y, eps, key)``, jitted (defence: a pytree)."""
    graphdef, state = nnx.split(model)

    def logits(defence, x01):
        m = nnx.merge(graphdef, state)
        return m.head(eigenshield.transform(defence, m.embed(x01)))

    def embed(x01):
        return nnx.merge(graphdef, state).embed(x01)

    def pgd(defence, x01, y, eps, key, steps: int):
        step = 2.5 * eps / steps

        def loss(x):
            lg = logits(defence, x)
            return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(lg, y))

        x = jnp.clip(x01 + jax.random.uniform(key, x01.shape, x01.dtype, -eps, eps), 0.0, 1.0)
        for _ in range(steps):
            g = jax.grad(loss)(x)
            x = jnp.clip(jnp.clip(x + step * jnp.sign(g), x01 - eps, x01 + eps), 0.0, 1.0)
        return x

    return jax.jit(logits), jax.jit(embed), jax.jit(pgd, static_argnames="steps")


def run_seed(config, seed: int, mesh, workdir: pathlib.Path):
    d = load_data(config, seed)
    t0 = time.perf_counter()
    model = train_model(config, *d["train"], seed, mesh, workdir)
    t_train = time.perf_counter() - t0
    logits, embed, pgd = make_pipeline(model)
    bs = int(config.eval_batch_size)
    emb_cal = _batched(embed, [d["cal"][0]], bs)
    key = jax.random.key(seed)
    k_fit, k_rand, k_att = jax.random.split(key, 3)
    fitted = eigenshield.fit(jnp.asarray(emb_cal), config.features, key=k_fit, alpha=config.alpha,
                             n_bootstrap=config.n_bootstrap)
    rank = int(eigenshield.causal_rank(fitted))
    defences = {"none": eigenshield.no_defence(fitted), "eigenshield": fitted,
                "pca": eigenshield.pca_baseline(fitted), "random": eigenshield.random_baseline(fitted, key=k_rand)}
    xte, yte = d["test"]
    proj = np.asarray(eigenshield.projector(fitted), np.float64)
    w_head = np.asarray(model.head.kernel[...], np.float64)  # [features, 10]
    cov = np.cov(emb_cal.astype(np.float64), rowvar=False)
    diag = {"head_energy_in_causal": float(np.sum((proj @ w_head) ** 2) / np.sum(w_head ** 2)),
            "variance_in_causal": float(np.trace(proj @ cov) / np.trace(cov)),
            "rank_over_dim": rank / config.features,
            "scores": np.asarray(fitted.scores)[np.asarray(fitted.spike_mask)].round(4).tolist(),
            "score_threshold": float(fitted.score_threshold)}
    pred = {n: _batched(lambda x, D=D: jnp.argmax(logits(D, x), -1), [xte], bs) for n, D in defences.items()}
    out = {"rank": rank, "n_spikes": int(np.sum(np.asarray(fitted.spike_mask))),
           "sigma2": float(fitted.sigma2), "bulk_edge": float(fitted.bulk_edge), "train_s": t_train, **diag}
    for n in DEFENCES:
        out[f"{n}_clean_accuracy"] = float(np.mean(pred[n] == yte))
    t1 = time.perf_counter()
    steps = int(config.pgd_steps)
    for eps255 in config.eps:
        eps = float(eps255) / 255.0
        keys = jax.random.split(jax.random.fold_in(k_att, int(eps255)), 1 + len(DEFENCES))
        adv_plain = _batched(lambda x, y, e=eps, k=keys[0]: pgd(defences["none"], x, y, e, k, steps), [xte, yte], bs)
        for i, n in enumerate(DEFENCES):
            ok = pred[n] == yte
            p_na = _batched(lambda x, D=defences[n]: jnp.argmax(logits(D, x), -1), [adv_plain], bs)
            out[f"{n}_asr_nonadaptive_eps{eps255}"] = _asr(p_na, yte, ok)
            if n == "none":
                out[f"{n}_asr_adaptive_eps{eps255}"] = out[f"{n}_asr_nonadaptive_eps{eps255}"]
                continue
            adv = _batched(lambda x, y, D=defences[n], e=eps, k=keys[1 + i]: pgd(D, x, y, e, k, steps), [xte, yte],
                           bs)
            p_ad = _batched(lambda x, D=defences[n]: jnp.argmax(logits(D, x), -1), [adv], bs)
            out[f"{n}_asr_adaptive_eps{eps255}"] = _asr(p_ad, yte, ok)
        # where the attack moves the embedding: fraction of the displacement inside the causal subspace
        # (a random subspace of the same rank holds rank / d of it in expectation)
        delta = _batched(embed, [adv_plain], bs) - _batched(embed, [xte], bs)
        inside = np.sum((delta @ proj) * delta, axis=1) / np.maximum(np.sum(delta * delta, axis=1), 1e-30)
        out[f"attack_in_causal_eps{eps255}"] = float(np.mean(inside))
    out["attack_s"] = time.perf_counter() - t1
    return out, fitted, emb_cal


def plot_spectrum(fitted, n: int, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = np.asarray(fitted.eigvals, np.float64)
    d = ev.size
    ratio = d / (n - 1)
    sigma2 = float(fitted.sigma2)
    lo, hi = (float(v) for v in la.mp_edges(ratio, sigma2))
    spikes = np.asarray(fitted.spike_mask)
    causal = np.asarray(fitted.mask)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4))
    bulk = ev[ev <= hi]
    a0.hist(bulk, bins=30, density=True, alpha=0.5, label=f"bulk eigenvalues ({bulk.size})")
    xs = np.linspace(max(lo, 1e-12), hi, 400)
    a0.plot(xs, np.asarray(la.marchenko_pastur_pdf(xs, ratio, sigma2)) * d / max(bulk.size, 1), "k-",
            label=f"MP law, σ² = {sigma2:.3g}, γ = {ratio:.3g} (scaled to the bulk)")
    a0.axvline(hi, color="C3", ls="--", label="bulk edge λ₊")
    a0.set(xlabel="eigenvalue", ylabel="density", title="bulk of the calibration spectrum")
    a0.legend(fontsize=8)
    idx = np.arange(1, d + 1)
    a1.semilogy(idx, ev, ".", color="0.6", label="eigenvalues")
    top = idx[: spikes.size]
    a1.semilogy(top[spikes], ev[: spikes.size][spikes], "o", mfc="none", color="C1", label=f"spikes ({spikes.sum()})")
    a1.semilogy(top[causal], ev[: causal.size][causal], "x", color="C2", label=f"causal set ({causal.sum()})")
    a1.axhline(hi, color="C3", ls="--", label="bulk edge λ₊")
    a1.set(xlabel="index (descending)", ylabel="eigenvalue", title="spectrum, spikes and causal subspace")
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Clean accuracy and ASR of each defence (mean ± std over seeds); writes ``table.md``, ``table.json``,
    ``spectrum.png``. ``config.task == "vlm"`` (the paper preset) runs :mod:`experiments.eigenshield.vlm`."""
    if config.get("task", "proxy") == "vlm":
        from experiments.eigenshield import vlm

        return vlm.train_and_evaluate(config, workdir)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = train.make_mesh()
    sweep = SeedSweep()
    runs = []
    for seed in config.seeds:
        r, fitted, emb_cal = run_seed(config, seed, mesh, workdir)
        runs.append(r)
        if seed == config.seeds[0]:
            plot_spectrum(fitted, len(emb_cal), workdir / "spectrum.png")
        add_seed_metrics(sweep, r, seed, config.eps)

    table = defence_table(runs, config.eps, "/255")
    diag_rows = [[r_i, r["rank"], r["n_spikes"], f"{r['rank_over_dim']:.3f}", f"{r['variance_in_causal']:.3f}",
                  f"{r['head_energy_in_causal']:.3f}"] + [f"{r[f'attack_in_causal_eps{e}']:.3f}" for e in config.eps]
                 for r_i, r in zip(config.seeds, runs)]
    diag_table = markdown_table(["seed", "causal rank r", "spikes", "r / d", "clean variance in causal subspace",
                                 "head weight energy in causal subspace"]
                                + [f"attack displacement in causal subspace, ε={e}/255" for e in config.eps],
                                diag_rows)
    ranks = [r["rank"] for r in runs]
    header = (f"Fashion-MNIST, SmallCNN encoder {tuple(config.channels)} → {config.features}-d embedding, "
              f"{config.n_train} train / {config.n_cal} calibration / {len(runs) and config.n_test} test images, "
              f"{config.epochs} epochs, PGD-{config.pgd_steps} L∞, seeds {list(config.seeds)}, causal rank per seed "
              f"{ranks} (spikes {[r['n_spikes'] for r in runs]}), alpha {config.alpha}")
    (workdir / "table.md").write_text(header + ".\n\n" + table + "\n\nWhere the subspace sits (non-adaptive "
                                      "attack on the undefended model):\n\n" + diag_table + "\n")
    (workdir / "table.json").write_text(json.dumps({"config": config.to_dict(), "runs": runs}, indent=2,
                                                   default=str))
    print(header + "\n" + table + "\n" + diag_table, flush=True)
    return Result(sweep.metrics(), extras={"ranks": ranks, "runs": runs},
                  tables={header: table, "Where the causal subspace sits (seed rows)": diag_table},
                  artifacts={"table": str(workdir / "table.md"), "spectrum": str(workdir / "spectrum.png")})
