"""RKHS SSL primitives (eigenkit.methods.rkhs, JAX) vs a NumPy/SciPy implementation of the same steps, in the same run.

    python -m experiments.benchmarks.rkhs [--out experiments/benchmarks/results/rkhs.json] [--length 12 --n 1024]
    python -m experiments.benchmarks.rkhs --quick --out /tmp/bench_rkhs_quick.json   # checks it runs

There is no official code (``shared/methods/rkhs.md``), so the baseline is the formula written in NumPy/SciPy here.
Workloads, all float64 on both sides (the masking kernel reaches ``(2 − α)^L``; the experiment runs in float64):

* **kernel** — the i.i.d.-masking kernel between all ``2^L`` cube points and ``n`` labelled ones:
  ``rkhs.masking_kernel`` (one-hot agreement matmul, then ``(α + 2(1−α))^h α^(L−h)``) vs the NumPy product
  formula ``Π_i (α + 2(1−α) 1[x_i = x'_i])`` (broadcast, the textbook form) and the same one-hot trick in NumPy;
* **krr** — kernel ridge fit + predict (``rkhs.kernel_ridge``: Cholesky + triangular solves) vs
  ``scipy.linalg.cho_factor`` / ``cho_solve``;
* **spectrum** — the ``L²(P_X)`` spectrum of the kernel on the whole cube (``rkhs.kernel_spectrum``) vs
  ``numpy.linalg.eigh`` of ``D^½ K D^½``.

Correctness first: the script stops unless the kernels agree to 1e-12 relative, the predictions to 1e-8 and the
eigenvalues to 1e-10 (and equal the exact ``(1 − α)^{|S|}``). Compile (``jit(...).lower(...).compile()``) and steady
state (median of ``--repeats`` calls after a warm-up, ``block_until_ready``) are reported apart; ratios are NumPy
time / eigenkit time (> 1: eigenkit faster). XLA and NumPy's BLAS use every core; the load average before the run
is recorded.
"""

from __future__ import annotations

import math
import os

import numpy as np

from experiments.benchmarks._common import first_and_median, machine_info, parser, write_result

QUICK = {"length": 8, "n": 128, "repeats": 2}


def _cube(length: int) -> np.ndarray:
    return ((np.arange(2 ** length)[:, None] >> np.arange(length)[None, :]) & 1).astype(np.int64)


def np_kernel_product(x, xp, alpha):
    return np.prod(alpha + 2.0 * (1.0 - alpha) * (x[:, None, :] == xp[None, :, :]), axis=-1)


def np_kernel_onehot(x, xp, alpha):
    oh = lambda t: np.eye(2)[t].reshape(len(t), -1)  # noqa: E731
    agree = oh(x) @ oh(xp).T
    return (alpha + 2.0 * (1.0 - alpha)) ** agree * alpha ** (x.shape[1] - agree)


def np_krr(k_tr, y, k_te, lam):
    import scipy.linalg

    n = len(k_tr)
    c = scipy.linalg.cho_factor(k_tr + n * lam * np.eye(n), lower=True)
    return k_te @ scipy.linalg.cho_solve(c, y)


def np_spectrum(k):
    n = len(k)
    lam, u = np.linalg.eigh(k / n)
    return lam[::-1], u[:, ::-1] * math.sqrt(n)


def main(argv=None) -> int:
    p = parser(__doc__, out="experiments/benchmarks/results/rkhs.json", repeats=5)
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--lam", type=float, default=1e-4)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    before = machine_info()
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from eigenkit.methods import rkhs

    x = _cube(args.length)
    rng = np.random.default_rng(0)
    tr = rng.permutation(len(x))[:args.n]
    y = rng.normal(size=args.n)
    a = args.alpha
    xj, trj = jnp.asarray(x), jnp.asarray(x[tr])

    import time

    k_np = np_kernel_product(x, x[tr], a)
    k_tr_np, k_full = k_np[tr], np_kernel_onehot(x, x, a)
    compile_s = {}

    def compiled(name, f, *example):
        t0 = time.perf_counter()
        out = jax.jit(f).lower(*example).compile()
        compile_s[name] = time.perf_counter() - t0
        return out

    kern = compiled("kernel_cube_x_n", lambda u, v: rkhs.masking_kernel(u, v, a), xj, trj)
    krr = compiled("krr_fit_predict", lambda kt, yy, ke: rkhs.kernel_ridge(kt, yy, ke, args.lam),
                   jnp.asarray(k_tr_np), jnp.asarray(y), jnp.asarray(k_np))
    spec = compiled("spectrum_full_cube", rkhs.kernel_spectrum, jnp.asarray(k_full))

    # correctness
    k_j = np.asarray(kern(xj, trj))
    if not np.allclose(k_j, k_np, rtol=1e-12, atol=0) or not np.allclose(np_kernel_onehot(x, x[tr], a), k_np,
                                                                          rtol=1e-12, atol=0):
        raise SystemExit("correctness check failed: kernels differ")
    pred_j = np.asarray(krr(jnp.asarray(k_tr_np), jnp.asarray(y), jnp.asarray(k_np)))
    pred_np = np_krr(k_tr_np, y, k_np, args.lam)
    if not np.allclose(pred_j, pred_np, rtol=1e-8, atol=1e-8 * np.abs(pred_np).max()):
        raise SystemExit(f"correctness check failed: KRR predictions differ by {np.abs(pred_j - pred_np).max()}")
    lam_j = np.asarray(spec(jnp.asarray(k_full))[0])
    lam_np = np_spectrum(k_full)[0]
    exact = np.sort([(1 - a) ** j for j in range(args.length + 1) for _ in range(math.comb(args.length, j))])[::-1]
    if not (np.allclose(lam_j, lam_np, atol=1e-10) and np.allclose(lam_j, exact, atol=1e-10)):
        raise SystemExit("correctness check failed: spectra differ")

    rows = {}

    def bench(name, f_jax, f_np):
        _, s = first_and_median(lambda: jax.block_until_ready(f_jax()), args.repeats)  # after one warm-up call
        _, t_np = first_and_median(f_np, args.repeats)
        rows[name] = {"eigenkit_compile_s": compile_s[name], "eigenkit_s": s, "numpy_s": t_np,
                      "ratio_numpy_over_eigenkit": t_np / s}

    bench("kernel_cube_x_n", lambda: kern(xj, trj), lambda: np_kernel_product(x, x[tr], a))
    rows["kernel_cube_x_n"]["numpy_onehot_s"] = first_and_median(lambda: np_kernel_onehot(x, x[tr], a),
                                                                 args.repeats)[1]
    ktr_j, y_j, kte_j = jnp.asarray(k_tr_np), jnp.asarray(y), jnp.asarray(k_np)
    bench("krr_fit_predict", lambda: krr(ktr_j, y_j, kte_j), lambda: np_krr(k_tr_np, y, k_np, args.lam))
    kf_j = jnp.asarray(k_full)
    bench("spectrum_full_cube", lambda: spec(kf_j), lambda: np_spectrum(k_full))
    result = {"benchmark": "rkhs", "baseline": "NumPy/SciPy formula of the same steps (no official code)",
              "dtype": "float64 both sides", "length": args.length, "n_points": len(x), "n_labels": args.n,
              "alpha": a, "ridge": args.lam, "threads": {"cpu_count": os.cpu_count(),
                                                          "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
              "machine_before": before, "rows": rows,
              "correctness": {"kernel_rtol": 1e-12, "krr_rtol": 1e-8, "spectrum_atol": 1e-10,
                              "spectrum_equals_exact": True}}
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
