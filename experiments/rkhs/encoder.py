"""Study ``rkhs.encoder``: an encoder trained with the spectral contrastive loss vs the exact top-d eigenspace of the
masking augmentation, across mask rates (Zhai et al.'s "RKHS approximation" step, learned instead of computed).

On the ``L``-bit cube with i.i.d. masking at rate ``α``: an MLP ``Ψ`` on one-hot augmented sequences
(``{0, 1, [M]}^L``) is trained with ``rkhs.spectral_contrastive_loss`` on pairs of augmentations of the same ``x``
(``eigenkit.train``, data parallel); the average encoder ``Φ(x) = E[Ψ(A) | x]`` (Monte Carlo over ``n_avg``
augmentations) should span the top-``d`` eigenspace of the augmentation operator, which for ``d`` at the degree-2
boundary (``d = 1 + L + C(L, 2)``) is the span of the Walsh parities of degree <= 2 for every ``α``. Reported per
``α``: the mean squared cosine of the principal angles between ``span Φ`` and that eigenspace (1 = exact), the
trace gap, and the test MSE of a ridge probe on ``Φ`` for a degree-<=2 target (the exact eigenfunctions as the
oracle baseline).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import linalg, train
from eigenkit.methods import rkhs
from experiments._contract import Result, SeedSweep, markdown_table
from experiments.rkhs.train import cube

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    c = ml_collections.ConfigDict(dict(
        description="MLP trained with the spectral contrastive loss on the masked 10-bit cube vs the exact "
                    "top-d (degree <= 2) eigenspace, per mask rate",
        expected_runtime="~3 min on 2 CPU cores",
        length=10, alphas=(0.1, 0.3, 0.5, 0.7, 0.9), seeds=(0,), hidden=256, batch_size=512, num_steps=1500,
        learning_rate=1e-3, n_avg=512, n_labels=256, ridge=1e-3, target_terms=8, noise=0.1,
        log_every=500, checkpoint_every=0, show_progress=False,
    ))
    if preset == "smoke":
        c.update(dict(description="rkhs.encoder smoke", expected_runtime="~10 s", length=6, alphas=(0.5,),
                      hidden=32, batch_size=64, num_steps=20, n_avg=4, n_labels=32, log_every=10))
    return c


class Encoder(nnx.Module):
    """One-hot ``(b, L, 3)`` augmented sequences -> ``(b, d)``."""

    def __init__(self, length: int, hidden: int, d: int, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(3 * length, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, d, rngs=rngs)

    def __call__(self, a):
        h = a.reshape(a.shape[0], -1)
        return self.out(jax.nn.relu(self.l2(jax.nn.relu(self.l1(h)))))


def _augment(rng: np.random.Generator, x: np.ndarray, alpha: float) -> np.ndarray:
    """One-hot of masked copies: channel 2 = mask."""
    a = np.where(rng.random(x.shape) < alpha, 2, x)
    return np.eye(3, dtype=np.float32)[a]


def _loss(model, batch, key):
    del key
    loss = rkhs.spectral_contrastive_loss(model(batch["a1"]), model(batch["a2"]))
    return loss, {}


def one_alpha(config, x: np.ndarray, alpha: float, seed: int, workdir: str) -> dict:
    length = x.shape[1]
    d = 1 + length + math.comb(length, 2)
    model = Encoder(length, int(config.hidden), d, rngs=nnx.Rngs(seed))
    mesh = train.make_mesh()
    state = train.TrainState.create(model, optax.adam(float(config.learning_rate)), mesh=mesh)
    step = train.make_train_step(_loss, mesh=mesh)

    def batches(s: int):
        rng = np.random.default_rng([seed, int(alpha * 1000), s])
        xb = x[rng.integers(0, len(x), int(config.batch_size))]
        return {"a1": _augment(rng, xb, alpha), "a2": _augment(rng, xb, alpha)}

    sub = train.subrun_config(config, drop=("alphas", "seeds"), alpha=float(alpha), seed=int(seed))
    state, hist = train.fit(state, step, batches=batches, num_steps=int(config.num_steps), workdir=workdir,
                            config=sub, mesh=mesh, seed=seed, log_every=int(config.log_every),
                            checkpoint_every=int(config.checkpoint_every), show_progress=bool(config.show_progress))
    enc = state.model()
    rng = np.random.default_rng([seed, 7])
    phi = np.mean([np.asarray(enc(jnp.asarray(_augment(rng, x, alpha)))) for _ in range(int(config.n_avg))], axis=0)
    with jax.enable_x64(True):
        chi, _ = rkhs.walsh_parities(x, 2)  # the exact top-d eigenspace (degree <= 2), any alpha
        k = rkhs.masking_kernel(x, x, float(alpha)) / len(x)
        phi64 = jnp.asarray(phi, jnp.float64)
        cos = jnp.cos(linalg.principal_angles(jnp.asarray(chi), phi64))
        gap = float(rkhs.trace_gap(k, phi64))
        top = float(jnp.sum(jnp.linalg.eigvalsh(k)[::-1][:d]))
        # downstream: a degree-<=2 target, ridge probe on phi vs on the exact eigenfunctions
        trng = np.random.default_rng([seed, 11])
        cols = trng.choice(chi.shape[1] - 1, int(config.target_terms), replace=False) + 1
        f = chi[:, cols] @ trng.normal(size=len(cols))
        y = f + float(config.noise) * trng.normal(size=len(f))
        perm = trng.permutation(len(x))
        tr, te = perm[:int(config.n_labels)], perm[int(config.n_labels):]
        lam = float(config.ridge)
        mse = float(np.mean((np.asarray(rkhs.ridge_probe(phi64[tr], y[tr], phi64[te], lam)) - f[te]) ** 2))
        oracle = float(np.mean((np.asarray(rkhs.ridge_probe(chi[tr, 1:], y[tr], chi[te, 1:], lam)) - f[te]) ** 2))
        cos = np.asarray(cos)
    return {"mean_cos2": float(np.mean(cos ** 2)), "min_cos": float(np.min(cos)), "trace_gap": gap,
            "trace_gap_rel": gap / top, "probe_test_mse": mse, "oracle_test_mse": oracle,
            "final_loss": float(hist[-1]["loss"]) if hist else float("nan"), "d": d}


def train_and_evaluate(config, workdir: str) -> Result:
    import pathlib

    wd = pathlib.Path(workdir)
    x = cube(int(config.length))
    sweep, rows, cells = SeedSweep(), [], {}
    for alpha in config.alphas:
        for seed in config.seeds:
            r = one_alpha(config, x, float(alpha), int(seed), str(wd / f"a{alpha}_s{seed}"))
            cells[f"a{alpha}_s{seed}"] = r
            sweep.add(f"mean_cos2_a{alpha}", r["mean_cos2"], seed=int(seed), higher_is_better=True)
            sweep.add(f"probe_test_mse_a{alpha}", r["probe_test_mse"], seed=int(seed), higher_is_better=False)
            sweep.add(f"oracle_test_mse_a{alpha}", r["oracle_test_mse"], seed=int(seed), baseline=True,
                      higher_is_better=False)
            rows.append([alpha, seed, r["mean_cos2"], r["min_cos"], r["trace_gap_rel"], r["probe_test_mse"],
                         r["oracle_test_mse"], r["final_loss"]])
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "encoder.md").write_text(markdown_table(
        ["alpha", "seed", "mean cos^2 (span vs eigenspace)", "min cos", "trace gap / top-d mass", "probe test MSE",
         "oracle test MSE", "final loss"], rows) + "\n")
    return Result(sweep.metrics(), extras={"cells": cells}, artifacts={"table": str(wd / "encoder.md")})
