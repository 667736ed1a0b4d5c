"""The augmentation-strength sweet spot of RKHS regression (Zhai et al., ICLR 2024, Sec. 4-5) on the closed-form
masking cube.

Data: all ``2^L`` binary sequences (uniform ``P_X``); target ``f* = Σ_S c_S χ_S`` over a few random Walsh parities
of degree 1-3 plus a small degree-``high_degree`` part, labels ``y = f*(x) + noise``. Augmentation: i.i.d. masking
with rate ``α``, whose kernel (``eigenkit.methods.rkhs.masking_kernel``) has eigenvalues ``(1 − α)^{|S|}`` and
``κ² = (2 − α)^L``.

For each ``α`` and number of labels ``n``: kernel ridge regression with ``K_α`` (ridge chosen on ``n_val`` other
labelled points), test error = mean squared error against the noiseless ``f*`` on every remaining point. The paper
predicts a trade-off: small ``α`` means a huge ``κ²`` (the kernel barely generalises), large ``α`` shrinks the
high-degree components (the target leaves the well-approximated part of the RKHS) — a U-shape in ``α``.
Baselines in the same run and split: linear ridge on the raw ±1 bits, and the oracle ridge probe on the exact
eigenfunctions up to ``oracle_degree`` (an exact top-d encoder, independent of ``α``).
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from eigenkit.methods import rkhs
from experiments._contract import Result, SeedSweep, markdown_table


def cube(length: int) -> np.ndarray:
    """All ``2^length`` binary sequences ``(2^L, L)``."""
    return ((np.arange(2 ** length)[:, None] >> np.arange(length)[None, :]) & 1).astype(np.int64)


def make_target(config, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """``f*`` on ``x`` and its terms ``[(S, c_S)]``."""
    length = x.shape[1]
    terms = []
    for degree, count in sorted((int(k), int(v)) for k, v in config.terms.items()):
        for _ in range(count):
            terms.append((tuple(sorted(rng.choice(length, degree, replace=False).tolist())), rng.normal()))
    if config.high_weight:
        terms.append((tuple(sorted(rng.choice(length, int(config.high_degree), replace=False).tolist())),
                      float(config.high_weight)))
    sign = 1.0 - 2.0 * x
    f = sum(c * np.prod(sign[:, list(s)], axis=1) for s, c in terms)
    return f, terms


def _mse(pred, f):
    return float(np.mean((np.asarray(pred) - f) ** 2))


def _best_ridge(fit, lambdas, y_val, f_test) -> tuple[float, float]:
    """Test MSE at the ridge with the lowest validation MSE: ``fit(lam) -> (val_pred, test_pred)``."""
    best = None
    for lam in lambdas:
        val, test = fit(float(lam))
        v = _mse(val, y_val)
        v = v if np.isfinite(v) else np.inf  # a failed factorisation never wins
        if best is None or v < best[0]:
            best = (v, lam, _mse(test, f_test))
    return best[2], best[1]


def sweep_seed(config, x: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    f, terms = make_target(config, x, rng)
    y = f + float(config.noise) * rng.normal(size=len(f))
    perm = rng.permutation(len(x))
    out = {"terms": [[list(s), float(c)] for s, c in terms], "cells": {}}
    chi, _ = rkhs.walsh_parities(x, int(config.oracle_degree))
    sign = 1.0 - 2.0 * x
    for n in config.ns:
        tr, va, te = perm[:n], perm[n:n + config.n_val], perm[n + config.n_val:]
        for alpha in config.alphas:
            k_tr = rkhs.masking_kernel(x[tr], x[tr], float(alpha))
            k_va = rkhs.masking_kernel(x[va], x[tr], float(alpha))
            k_te = rkhs.masking_kernel(x[te], x[tr], float(alpha))

            def fit(lam, k_tr=k_tr, k_va=k_va, k_te=k_te, tr=tr):
                return (rkhs.kernel_ridge(k_tr, y[tr], k_va, lam), rkhs.kernel_ridge(k_tr, y[tr], k_te, lam))

            mse, lam = _best_ridge(fit, config.lambdas, y[va], f[te])
            fixed, _ = _best_ridge(fit, (config.fixed_lambda,), y[va], f[te])
            out["cells"][f"krr_n{n}_a{alpha}"] = {"test_mse": mse, "lambda": lam, "fixed_lambda_test_mse": fixed,
                                                  "kappa_sq": float((2.0 - float(alpha)) ** x.shape[1])}
        for name, feats in (("linear", sign), ("oracle", chi[:, 1:])):
            def fit(lam, feats=feats, tr=tr, va=va, te=te):
                return (rkhs.ridge_probe(feats[tr], y[tr], feats[va], lam),
                        rkhs.ridge_probe(feats[tr], y[tr], feats[te], lam))

            mse, lam = _best_ridge(fit, config.lambdas, y[va], f[te])
            out["cells"][f"{name}_n{n}"] = {"test_mse": mse, "lambda": lam}
    return out


def _plot(workdir: pathlib.Path, config, per_seed: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    alphas = np.asarray(config.alphas, float)
    for n in config.ns:
        m = np.array([[s["cells"][f"krr_n{n}_a{a}"]["test_mse"] for a in config.alphas] for s in per_seed])
        line = ax.errorbar(alphas, m.mean(0), yerr=m.std(0), marker="o", ms=3, capsize=2,
                           label=f"KRR, n = {n} (ridge tuned)")
        color = line.lines[0].get_color()
        fx = np.array([[s["cells"][f"krr_n{n}_a{a}"]["fixed_lambda_test_mse"] for a in config.alphas]
                       for s in per_seed])
        ax.plot(alphas, fx.mean(0), "-.", lw=1, color=color, label=f"n = {n}, ridge {config.fixed_lambda}")
        o = np.mean([s["cells"][f"oracle_n{n}"]["test_mse"] for s in per_seed])
        ax.axhline(o, ls=":", lw=1, color=color)
    ax.set(xlabel="mask rate α", ylabel="test MSE vs f* (dotted: exact-eigenspace oracle)", yscale="log",
           xscale="logit",
           title=f"RKHS regression on the {config.length}-bit cube")
    tw = ax.twinx()
    tw.plot(alphas, (2.0 - alphas) ** int(config.length), "k--", lw=1, label="κ² = (2 − α)^L")
    tw.set(yscale="log", ylabel="κ² (dashed)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path = workdir / "sweet_spot.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def train_and_evaluate(config, workdir: str) -> Result:
    if config.get("task", "cube") == "text":  # the paper preset: MLM on real text (study rkhs.text's code path)
        from experiments.rkhs import text

        return text.train_and_evaluate(config, workdir)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    x = cube(int(config.length))
    t0 = time.perf_counter()
    with jax.enable_x64(True):  # kernels reach (2 - alpha)^L and ridges 1e-7: Cholesky in float64
        per_seed = [sweep_seed(config, x, int(s)) for s in config.seeds]
    wall = time.perf_counter() - t0
    sweep = SeedSweep()
    rows, extras = [], {"sweep_s": wall, "n_points": len(x), "per_seed": per_seed}
    for n in config.ns:
        mean = {a: float(np.mean([s["cells"][f"krr_n{n}_a{a}"]["test_mse"] for s in per_seed]))
                for a in config.alphas}
        fixed = {a: float(np.mean([s["cells"][f"krr_n{n}_a{a}"]["fixed_lambda_test_mse"] for s in per_seed]))
                 for a in config.alphas}
        best_alpha, best_fixed = min(mean, key=mean.get), min(fixed, key=fixed.get)
        for seed, s in zip(config.seeds, per_seed):
            sweep.add(f"krr_best_alpha_test_mse_n{n}", s["cells"][f"krr_n{n}_a{best_alpha}"]["test_mse"],
                      seed=int(seed), higher_is_better=False)
            for name in ("linear", "oracle"):
                sweep.add(f"{name}_test_mse_n{n}", s["cells"][f"{name}_n{n}"]["test_mse"], seed=int(seed),
                          baseline=True, higher_is_better=False)
        lo, hi = mean[config.alphas[0]], mean[config.alphas[-1]]
        extras[f"best_alpha_n{n}"] = float(best_alpha)
        extras[f"u_shape_n{n}"] = bool(mean[best_alpha] < lo and mean[best_alpha] < hi)
        extras[f"fixed_lambda_best_alpha_n{n}"] = float(best_fixed)
        extras[f"fixed_lambda_u_shape_n{n}"] = bool(fixed[best_fixed] < fixed[config.alphas[0]]
                                                    and fixed[best_fixed] < fixed[config.alphas[-1]])
        rows += [[n, a, (2.0 - a) ** int(config.length), mean[a], fixed[a]] for a in config.alphas]
    table = markdown_table(["n", "alpha", "kappa^2", "KRR test MSE, ridge tuned (mean over seeds)",
                            f"KRR test MSE, ridge {config.fixed_lambda}"], rows)
    (workdir / "sweet_spot.md").write_text(table + "\n")
    (workdir / "results.json").write_text(json.dumps(extras, indent=1, default=float))
    artifacts = {"table": str(workdir / "sweet_spot.md")}
    if config.plot:
        artifacts["plot"] = _plot(workdir, config, per_seed)
    return Result(sweep.metrics(), extras={k: v for k, v in extras.items() if k != "per_seed"}, artifacts=artifacts)
