"""EigenShield-style (reconstructed) fit and transform: eigenkit (JAX) vs a NumPy/SciPy implementation of the same
steps, in the same run.

    python -m experiments.benchmarks.eigenshield [--out experiments/benchmarks/results/eigenshield.json] \
        [--n 10000 --d 512 --max-rank 32 --bootstrap 20 --batch 4096 --alpha 0.25] [--repeats 5] \
        [--threads 2] [--ab-rounds R]
    python -m experiments.benchmarks.eigenshield --quick --out /tmp/bench_eigenshield_quick.json  # checks it runs
    python -m experiments.benchmarks.eigenshield --threads 1 --ab-rounds 10 \
        --out /tmp/bench_eigenshield_1thread.json   # the single-thread control, with the interleaved A/B

There is no official code (``shared/methods/eigenshield.md``), so the baseline is the naive NumPy/SciPy formula of
each step, written in this script: centring, covariance ``S = X_cᵀX_c/(n−1)``, ``numpy.linalg.eigh``, noise level
(median eigenvalue over the Marchenko–Pastur median, SciPy ``quad`` + ``brentq``), Tracy–Widom-margin spike threshold,
bootstrap RbNS (``n_bootstrap`` resampled covariances and ``eigh``), conformal quantile, causal mask; transform
``μ + ((x − μ) U_𝒞) U_𝒞ᵀ``. Data: ``n`` calibration embeddings of width ``d`` (float32), Gaussian noise
(``σ² = 1``) plus 16 planted spikes from far above to just above the BBP threshold ``σ²√γ``, and a mean offset.

Two workloads:

* **fit** — :func:`eigenkit.methods.eigenshield.fit` jitted (static ``max_rank``, ``n_bootstrap``) vs the NumPy fit
  in float32 (like for like) and float64 (the correctness reference).
* **transform** — :func:`eigenkit.methods.eigenshield.transform` jitted on a ``batch × d`` block of embeddings vs
  the NumPy projection in float32; throughput in embeddings / s.

Correctness first: the float64 NumPy fit is fed the very resamples JAX draws (``bootstrap_indices``) and the script
stops unless the leading eigenvalues agree to 1e-4 relative, ``σ²`` and the spike threshold to 1e-4, spike and causal
masks exactly, the scores to 2e-3, the causal projector to 1e-3 (Frobenius, relative) and the transformed batch to
1e-4 relative. Compile (``jit(...).lower(...).compile()``) and steady state (median of ``--repeats`` calls after one
warm-up, ``block_until_ready``) are reported apart. Ratios are NumPy time / eigenkit time (> 1: eigenkit faster).
Threads: XLA and NumPy's BLAS/LAPACK are pinned to ``--threads`` cores (``_common.pin_threads``), recorded under
``threads`` with the measured CPU/wall ratio of each side's fit; the load average before and after the run is
recorded: time only on an idle machine. ``--ab-rounds R`` (> 0) also times eigenkit and NumPy float32 interleaved
round by round in this process, R rounds, for the fit and for the transform (``interleaved_ab``, ratios
``ab_ratio_numpy_f32_over_eigenkit_median`` / ``_min``).
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)

QUICK = {"n": 1000, "d": 64, "max_rank": 8, "bootstrap": 4, "batch": 256, "repeats": 2}


def make_data(n: int, d: int, batch: int, seed: int = 0):
    """Calibration embeddings ``(n, d)`` and a test batch ``(batch, d)`` from ``σ² I + Σ ℓ_i q_i q_iᵀ``, float32."""
    rng = np.random.default_rng(seed)
    gamma = d / (n - 1)
    ells = np.geomspace(40.0, 2.5 * math.sqrt(gamma), 16)  # strongest … just past BBP (2.5 σ²√γ)
    q, _ = np.linalg.qr(rng.standard_normal((d, ells.size)))
    shift = rng.standard_normal(d)

    def draw(m):
        return (rng.standard_normal((m, d)) + (rng.standard_normal((m, ells.size)) * np.sqrt(ells)) @ q.T
                + shift).astype(np.float32)

    return draw(n), draw(batch)


# --------------------------------------------------------------------------- the NumPy/SciPy implementation


def _mp_median(ratio: float) -> float:
    from scipy.integrate import quad
    from scipy.optimize import brentq

    lo, hi = (1 - math.sqrt(ratio)) ** 2, (1 + math.sqrt(ratio)) ** 2
    pdf = lambda x: math.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * math.pi * ratio * x)  # noqa: E731
    mass = quad(pdf, lo, hi, limit=200)[0]  # 1 for γ <= 1; 1/γ (continuous part) for γ > 1
    return brentq(lambda t: quad(pdf, lo, t, limit=200)[0] / mass - 0.5, lo + 1e-12, hi)


def _spectrum(x):
    xc = x - x.mean(0)
    w, v = np.linalg.eigh(xc.T @ xc / (x.shape[0] - 1))
    return w[::-1], v[:, ::-1]


def numpy_fit(e, max_rank, n_bootstrap, alpha=0.1, tw_margin=3.0, indices=None, seed=0):
    """The fit's steps in NumPy/SciPy (dtype of ``e``); ``indices``: the ``(B, n)`` resamples (else drawn here)."""
    n, d = e.shape
    mu = e.mean(0)
    w, v = _spectrum(e)
    s2 = float(np.median(w[: min(n - 1, d)])) / _mp_median(d / (n - 1))
    sn, sp = math.sqrt(n - 1), math.sqrt(d)
    thr = s2 * ((sn + sp) ** 2 + tw_margin * (sn + sp) * (1 / sn + 1 / sp) ** (1 / 3)) / (n - 1)
    spikes = w[:max_rank] > thr
    basis = v[:, :max_rank]
    if indices is None:
        indices = np.random.default_rng(seed).integers(0, n, (n_bootstrap, n))
    kept = np.zeros(max_rank, np.float64)
    for idx in indices:
        wb, vb = _spectrum(e[idx])
        mb = wb[:max_rank] > thr
        kept += np.sum((vb[:, :max_rank][:, mb].T @ basis) ** 2, axis=0)
    scores = np.clip(1 - kept / len(indices), 0, 1)
    k = int(spikes.sum())
    level = math.ceil((1 - alpha) * (k + 1) - 1e-9)
    tau = float(np.sort(scores[spikes])[level - 1]) if 0 < level <= k else math.inf
    return {"mean": mu, "basis": basis, "mask": spikes & (scores <= tau), "spikes": spikes, "scores": scores,
            "eigvals": w, "sigma2": s2, "threshold": thr, "tau": tau}


def numpy_transform(fit, x):
    u = fit["basis"][:, fit["mask"]].astype(x.dtype)
    mu = fit["mean"].astype(x.dtype)
    return mu + ((x - mu) @ u) @ u.T


# --------------------------------------------------------------------------- timing


def bench_ours(e, x, max_rank, n_bootstrap, alpha, repeats):
    import jax
    import jax.numpy as jnp

    from eigenkit.methods import eigenshield

    ej, xj, key = jnp.asarray(e), jnp.asarray(x), jax.random.key(0)
    fit = jax.jit(eigenshield.fit, static_argnames=("max_rank", "n_bootstrap"))
    t0 = time.perf_counter()
    fit_c = fit.lower(ej, max_rank=max_rank, key=key, alpha=alpha, n_bootstrap=n_bootstrap).compile()
    fit_compile = time.perf_counter() - t0
    run_fit = lambda: jax.block_until_ready(fit_c(ej, key=key, alpha=alpha))  # noqa: E731
    fit_first, fit_steady = first_and_median(run_fit, repeats)
    st = fit_c(ej, key=key, alpha=alpha)
    tr = jax.jit(eigenshield.transform)
    t0 = time.perf_counter()
    tr_c = tr.lower(st, xj).compile()
    tr_compile = time.perf_counter() - t0
    tr_first, tr_steady = first_and_median(lambda: jax.block_until_ready(tr_c(st, xj)), max(repeats, 10))
    rows = {"fit_compile_s": fit_compile, "fit_first_s": fit_first, "fit_s": fit_steady,
            "transform_compile_s": tr_compile, "transform_first_s": tr_first, "transform_s": tr_steady,
            "transform_embeddings_per_s": x.shape[0] / tr_steady}
    indices = np.asarray(eigenshield.bootstrap_indices(key, e.shape[0], n_bootstrap))
    runs = {"fit": run_fit, "transform": lambda: jax.block_until_ready(tr_c(st, xj))}
    return rows, st, np.asarray(tr_c(st, xj)), indices, runs


def bench_numpy(e, x, max_rank, n_bootstrap, alpha, repeats, dtype):
    """NumPy rows and the steady-state calls ``{"fit", "transform"}`` (for the A/B)."""
    ed, xd = e.astype(dtype), x.astype(dtype)
    run_fit = lambda: numpy_fit(ed, max_rank, n_bootstrap, alpha)  # noqa: E731
    fit_first, fit_steady = first_and_median(run_fit, repeats)
    ref = numpy_fit(ed, max_rank, n_bootstrap, alpha)
    run_tr = lambda: numpy_transform(ref, xd)  # noqa: E731
    tr_first, tr_steady = first_and_median(run_tr, max(repeats, 10))
    return {"fit_first_s": fit_first, "fit_s": fit_steady, "transform_first_s": tr_first, "transform_s": tr_steady,
            "transform_embeddings_per_s": x.shape[0] / tr_steady}, {"fit": run_fit, "transform": run_tr}


def check(st, y_ours, ref, y_ref, max_rank):
    rel = lambda a, b: float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))  # noqa: E731
    mask = np.asarray(st.mask)
    u, ur = np.asarray(st.basis, np.float64)[:, mask], ref["basis"][:, ref["mask"]]
    p_ours, p_ref = u @ u.T, ur @ ur.T
    out = {
        "eigvals_top_max_rel_diff": float(np.max(np.abs(np.asarray(st.eigvals[:max_rank], np.float64)
                                                        - ref["eigvals"][:max_rank]) / ref["eigvals"][:max_rank])),
        "sigma2_rel_diff": abs(float(st.sigma2) - ref["sigma2"]) / ref["sigma2"],
        "spike_threshold_rel_diff": abs(float(st.spike_threshold) - ref["threshold"]) / ref["threshold"],
        "spike_masks_equal": bool(np.array_equal(np.asarray(st.spike_mask), ref["spikes"])),
        "causal_masks_equal": bool(np.array_equal(mask, ref["mask"])),
        "n_spikes": int(ref["spikes"].sum()), "causal_rank": int(ref["mask"].sum()),
        "scores_max_abs_diff": float(np.max(np.abs(np.asarray(st.scores, np.float64) - ref["scores"]), initial=0.0)),
        "projector_rel_diff": rel(p_ours, p_ref) if ur.shape[1] else 0.0,
        "transform_rel_diff": rel(y_ours.astype(np.float64), y_ref),
    }
    ok = (out["eigvals_top_max_rel_diff"] < 1e-4 and out["sigma2_rel_diff"] < 1e-4
          and out["spike_threshold_rel_diff"] < 1e-4 and out["spike_masks_equal"] and out["causal_masks_equal"]
          and out["scores_max_abs_diff"] < 2e-3 and out["projector_rel_diff"] < 1e-3
          and out["transform_rel_diff"] < 1e-4 and out["n_spikes"] > 0)
    return out, ok


def build_parser():
    """The command line (``_common.parser`` plus the sizes)."""
    ap = parser(__doc__, out="experiments/benchmarks/results/eigenshield.json")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes (n 1000, d 64, max rank 8, 4 resamples, batch 256, 2 repeats): checks the "
                         "script end to end; its timings mean nothing")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--max-rank", dest="max_rank", type=int, default=32)
    ap.add_argument("--bootstrap", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--alpha", type=float, default=0.25, help="quantile level (0.25: with 16 spikes, 3 are dropped)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    threads = pin_threads(args.threads)  # before the first jax array
    import jax

    load_before = check_load("before")
    e, x = make_data(args.n, args.d, args.batch)
    ours, st, y_ours, indices, runs = bench_ours(e, x, args.max_rank, args.bootstrap, args.alpha, args.repeats)
    ref = numpy_fit(e.astype(np.float64), args.max_rank, args.bootstrap, args.alpha, indices=indices)
    checks, ok = check(st, y_ours, ref, numpy_transform(ref, x.astype(np.float64)), args.max_rank)
    if not ok:
        raise SystemExit(f"correctness check failed: {checks}")
    np32, np_runs = bench_numpy(e, x, args.max_rank, args.bootstrap, args.alpha, args.repeats, np.float32)
    np64, _ = bench_numpy(e, x, args.max_rank, args.bootstrap, args.alpha, args.repeats, np.float64)
    threads.update(jax_measured_parallelism=measured_parallelism(runs["fit"], 2),
                   numpy_measured_parallelism=measured_parallelism(np_runs["fit"], 2))
    ab = None
    if args.ab_rounds > 0:
        ab = {w: interleaved_ab({"eigenkit": runs[w], "numpy_f32": np_runs[w]}, args.ab_rounds,
                                [("numpy_f32", "eigenkit")]) for w in ("fit", "transform")}
    result = {
        "benchmark": "eigenshield",
        "shape": {"n": args.n, "d": args.d, "max_rank": args.max_rank, "n_bootstrap": args.bootstrap,
                  "batch": args.batch, "alpha": args.alpha},
        "quick": args.quick, "dtype": "float32 (eigenkit and numpy_f32); numpy_f64 is the correctness reference",
        "baseline": "NumPy/SciPy implementation of the same steps in this script (no official code exists)",
        "ours": ours, "numpy_f32": np32, "numpy_f64": np64, "checks": checks,
        "ratios_numpy_over_ours": {
            "fit_f32": np32["fit_s"] / ours["fit_s"], "fit_f64": np64["fit_s"] / ours["fit_s"],
            "transform_f32": np32["transform_s"] / ours["transform_s"],
            "transform_f64": np64["transform_s"] / ours["transform_s"],
        },
        "jax": jax.__version__, "numpy": np.__version__, "cpu_count": os.cpu_count(),
        "loadavg_before": load_before, "loadavg_after": check_load("after"), "threads": threads,
        "interleaved_ab": ab,
        "command": "python -m experiments.benchmarks.eigenshield "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "repeats": args.repeats, "python": sys.version.split()[0],
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
