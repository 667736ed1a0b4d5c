"""RKHS SSL primitives (eigenkit.methods.rkhs, JAX) vs a NumPy/SciPy implementation of the same steps, in the same run.

    python -m experiments.benchmarks.rkhs [--out experiments/benchmarks/results/rkhs.json] [--length 12 --n 1024]
                                          [--only {all,base,topd}] [--topd-length 14 --topd-repeats 1]
    python -m experiments.benchmarks.rkhs --quick --out /tmp/bench_rkhs_quick.json   # checks it runs (seconds)
    python -m experiments.benchmarks.rkhs --only topd --topd-length 12 --out /tmp/bench_rkhs_12.json  # ~1 min
    python -m experiments.benchmarks.rkhs --only base --threads 1 --ab-rounds 10 \
        --out /tmp/bench_rkhs_1thread.json   # the single-thread control, with the interleaved A/B

``--threads N`` (default 2) pins XLA and NumPy/SciPy's BLAS/LAPACK to N cores (``_common.pin_threads``, before JAX
starts); ``--ab-rounds R`` (> 0) also times each workload's eigenkit and NumPy/SciPy calls interleaved round by
round in this process, R rounds (``interleaved_ab``: per base row, and in ``top_d`` for ``eigh`` and
``lobpcg_matfree`` against ``scipy_eigh_subset``; there each round costs the dense eigh on both sides).

The full run (``--only all``, the default, with ``--topd-length 14``: a 16,384-point kernel, 2 GB in float64, and
two dense 16k ``eigh`` on each side) takes tens of minutes on a small machine; run it on an idle one. ``--only base``
/ ``--only topd`` run one group (the JSON then holds only that group: do not point ``--out`` at the full result).

There is no official code (``shared/methods/rkhs.md``), so the baseline is the formula written in NumPy/SciPy here.
Workloads, all float64 on both sides (the masking kernel reaches ``(2 − α)^L``; the experiment runs in float64):

* **kernel** — the i.i.d.-masking kernel between all ``2^L`` cube points and ``n`` labelled ones:
  ``rkhs.masking_kernel`` (one-hot agreement matmul, then ``(α + 2(1−α))^h α^(L−h)``) vs the NumPy product
  formula ``Π_i (α + 2(1−α) 1[x_i = x'_i])`` (broadcast, the textbook form) and the same one-hot trick in NumPy;
* **krr** — kernel ridge fit + predict (``rkhs.kernel_ridge``: Cholesky + triangular solves) vs
  ``scipy.linalg.cho_factor`` / ``cho_solve``;
* **spectrum** — the ``L²(P_X)`` spectrum of the kernel on the whole cube (``rkhs.kernel_spectrum``) vs
  ``numpy.linalg.eigh`` of ``D^½ K D^½``.
* **top_d** (issue 23) — the top-``d`` eigenspace of ``K / n`` on the whole ``2^L`` cube (``--topd-length``, default
  14: ``n = 16,384``), ``d = 1 + L + C(L, 2)`` at the degree-≤2 boundary (the eigenvalues are ``(1 − α)^{|S|}``, so
  the top-d space is the span of the Walsh parities of degree ≤ 2 and the gap is ``(1 − α)² − (1 − α)³``):

  - ``eigh``: ``linalg.topk_eigh`` (a dense LAPACK eigh and a slice) of the materialised kernel;
  - ``lobpcg``: ``linalg.lobpcg_eigh`` with the matvec ``K @ v`` of the materialised kernel;
  - ``lobpcg_matfree``: ``linalg.lobpcg_eigh`` with ``rkhs.masking_kernel_matvec`` (``(--topd-block, n)`` kernel
    slabs; the ``n × n`` kernel never exists; run first, so the peak RSS after it is that of the matrix-free path);
  - baseline ``scipy_eigh_subset``: ``scipy.linalg.eigh(K / n, subset_by_index=[n − d, n − 1])`` (the NumPy/SciPy
    way to a top-d eigenspace of a dense matrix) and, with ``--topd-numpy-full``, ``numpy.linalg.eigh``.

  The materialised methods time the solver on a prebuilt ``K / n`` (its build, ``rkhs.masking_kernel``, is timed
  apart as ``kernel_build``); the matrix-free one includes the kernel. Agreement with the exact eigenspace is
  measured without forming ``n × n`` projectors: with ``U`` the (re-orthonormalised) returned basis and ``Q`` the
  normalised parities, ``E = U − Q(QᵀU)``, ``sin θ_max = ‖E‖₂`` and ``‖P_U − P_Q‖_F = √2 ‖E‖_F``; eigenvalues are
  compared with the exact ``(1 − α)^{|S|}``. The run fails (exit 1, after writing the JSON with the numbers) if
  ``sin θ_max > 1e-8`` or an eigenvalue is off by more than ``1e-10`` for any method. ``--topd-repeats`` (default 1:
  a 16k ``eigh`` takes minutes) sets the steady-state repetitions after the first (warm-up) call.

Correctness first: the script stops unless the kernels agree to 1e-12 relative, the predictions to 1e-8 and the
eigenvalues to 1e-10 (and equal the exact ``(1 − α)^{|S|}``). Compile (``jit(...).lower(...).compile()``) and steady
state (median of ``--repeats`` calls after a warm-up, ``block_until_ready``) are reported apart; ratios are NumPy
time / eigenkit time (> 1: eigenkit faster). ``threads`` in the JSON holds ``pin_threads``' report and the measured
CPU/wall ratio of each side (base rows: ``measured_parallelism`` of both calls; ``top_d`` rows: ``cpu_over_wall`` of
their timed calls); the load average before and after the run is recorded (``loadavg_before`` / ``_after``).
"""

from __future__ import annotations

import math
import os

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    machine_info,
    measured_parallelism,
    parser,
    peak_rss_mb,
    pin_threads,
    write_result,
)

QUICK = {"length": 8, "n": 128, "repeats": 2, "topd_length": 8, "topd_repeats": 2, "topd_numpy_full": True}
SIN_TOL, EIG_TOL = 1e-8, 1e-10  # top_d: largest principal-angle sine vs the exact eigenspace, eigenvalue abs error


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


def np_top_d_scipy(kn, d):
    import scipy.linalg

    n = len(kn)
    w, u = scipy.linalg.eigh(kn, subset_by_index=[n - d, n - 1])
    return w[::-1], u[:, ::-1]


def np_top_d_numpy(kn, d):
    w, u = np.linalg.eigh(kn)
    return w[::-1][:d], u[:, ::-1][:, :d]


def subspace_agreement(u, q) -> dict:
    """``span(u)`` vs ``span(q)`` (``q`` orthonormal, same dimension) from ``n × d`` products only: ``U`` = QR of
    ``u``, ``E = U − Q(QᵀU)``; ``sin θ_max = ‖E‖₂`` and ``‖P_U − P_Q‖_F = √2 ‖E‖_F`` (no ``n × n`` projector)."""
    u = np.asarray(u, np.float64)
    orth = float(np.abs(u.T @ u - np.eye(u.shape[1])).max())
    uq = np.linalg.qr(u)[0]
    e = uq - q @ (q.T @ uq)
    return {"sin_theta_max": float(np.linalg.norm(e, 2)), "projector_fro": float(np.sqrt(2) * np.linalg.norm(e)),
            "orthonormality_err": orth}


def base_rows(args, jax, jnp, rkhs) -> tuple[dict, dict]:
    """The kernel / krr / spectrum rows (``rows``, ``correctness``); raises SystemExit on a correctness failure."""
    import time

    x = _cube(args.length)
    rng = np.random.default_rng(0)
    tr = rng.permutation(len(x))[:args.n]
    y = rng.normal(size=args.n)
    a = args.alpha
    xj, trj = jnp.asarray(x), jnp.asarray(x[tr])

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
        run = lambda: jax.block_until_ready(f_jax())  # noqa: E731
        _, s = first_and_median(run, args.repeats)  # after one warm-up call
        _, t_np = first_and_median(f_np, args.repeats)
        rows[name] = {"eigenkit_compile_s": compile_s[name], "eigenkit_s": s, "numpy_s": t_np,
                      "ratio_numpy_over_eigenkit": t_np / s,
                      "measured_parallelism": {"eigenkit": measured_parallelism(run, 2),
                                               "numpy": measured_parallelism(f_np, 2)}}
        if args.ab_rounds > 0:
            rows[name]["interleaved_ab"] = interleaved_ab({"eigenkit": run, "numpy": f_np}, args.ab_rounds,
                                                          [("numpy", "eigenkit")])

    bench("kernel_cube_x_n", lambda: kern(xj, trj), lambda: np_kernel_product(x, x[tr], a))
    rows["kernel_cube_x_n"]["numpy_onehot_s"] = first_and_median(lambda: np_kernel_onehot(x, x[tr], a),
                                                                 args.repeats)[1]
    ktr_j, y_j, kte_j = jnp.asarray(k_tr_np), jnp.asarray(y), jnp.asarray(k_np)
    bench("krr_fit_predict", lambda: krr(ktr_j, y_j, kte_j), lambda: np_krr(k_tr_np, y, k_np, args.lam))
    kf_j = jnp.asarray(k_full)
    bench("spectrum_full_cube", lambda: spec(kf_j), lambda: np_spectrum(k_full))
    correctness = {"kernel_rtol": 1e-12, "krr_rtol": 1e-8, "spectrum_atol": 1e-10, "spectrum_equals_exact": True}
    return rows, correctness


def top_d_rows(args, jax, jnp, rkhs) -> dict:
    """The ``top_d`` group: top-d eigenspace of ``K / n`` on the ``2^L`` cube by eigh, LOBPCG (materialised) and
    matrix-free LOBPCG vs SciPy's subset eigh; agreement with the exact degree-≤2 parity eigenspace."""
    import time

    from eigenkit import linalg

    length, a, reps = args.topd_length, args.alpha, args.topd_repeats
    x = _cube(length)
    n, d = len(x), 1 + length + math.comb(length, 2)
    block = min(args.topd_block, n)
    xj = jnp.asarray(x)
    f64 = jnp.float64
    q = rkhs.walsh_parities(x, 2)[0] / math.sqrt(n)  # exact top-d eigenvectors, orthonormal
    lam_exact = np.array([1.0] + [1 - a] * length + [(1 - a) ** 2] * math.comb(length, 2))
    gap = (1 - a) ** 2 - (1 - a) ** 3
    key = jax.random.key(0)
    rows, out, runs = {}, {}, {}

    def compiled(f, *example):
        t0 = time.perf_counter()
        c = jax.jit(f).lower(*example).compile()
        return c, time.perf_counter() - t0

    def timed(name, fn):
        """First call (its output is kept for the checks) and the median of ``reps`` more; ``cpu_over_wall``: the
        median process CPU time over wall time of these calls (the cores really used)."""
        ratios = []

        def call():
            c0, t0 = time.process_time(), time.perf_counter()
            out[name] = fn()
            ratios.append((time.process_time() - c0) / max(time.perf_counter() - t0, 1e-9))
        first, steady = first_and_median(call, reps)
        runs[name] = fn
        return {"first_s": first, "s": steady, "cpu_over_wall": float(np.median(ratios))}

    def lobpcg_row(name, f, *args_):
        c, comp = compiled(f, *args_)
        row = {"compile_s": comp, **timed(name, lambda: jax.block_until_ready(c(*args_)))}
        w, u, info = out[name]
        res = np.asarray(info.residual, np.float64)  # relative: ‖A u − w u‖ / max|w|
        row.update(iterations=int(info.iterations), max_iter=args.topd_max_iter, converged=bool(info.converged),
                   max_rel_residual=float(res.max()),
                   # Davis–Kahan sin θ theorem: ‖sin Θ‖_F <= ‖R‖_F / gap (max|w| = 1 here)
                   sin_theta_bound_davis_kahan=float(np.sqrt(np.sum(res ** 2)) * float(np.max(np.abs(w))) / gap))
        out[name] = (w, u)
        return row

    # 1. matrix-free first: the peak RSS after it is that of a process that never held the n x n kernel
    def matfree(xx, k):
        mv = lambda v: rkhs.masking_kernel_matvec(xx, v, a, block_size=block) / n  # noqa: E731
        return linalg.lobpcg_eigh(mv, n, d, key=k, dtype=f64, max_iter=args.topd_max_iter)

    rows["lobpcg_matfree"] = lobpcg_row("lobpcg_matfree", matfree, xj, key)
    rows["lobpcg_matfree"].update(kernel_slab_bytes=block * n * 8, working_slab_bytes=block * n * (4 + 4 + 8),
                                  block_size=block, peak_rss_mb_after=peak_rss_mb())
    # 2. the materialised kernel K / n (eigenkit), timed apart
    kbuild, comp = compiled(lambda xx: rkhs.masking_kernel(xx, xx, a) / n, xj)
    kernel_row = {"compile_s": comp, **timed("kernel", lambda: jax.block_until_ready(kbuild(xj))),
                  "kernel_bytes": n * n * 8}
    kn = out.pop("kernel")
    # 3. dense eigh + slice, and LOBPCG on K @ v
    c_eigh, comp = compiled(lambda k: linalg.topk_eigh(k, d, which=linalg.Which.LARGEST,
                                                       grad_rule=linalg.EighGrad.EXACT), kn)
    rows["eigh"] = {"compile_s": comp, **timed("eigh", lambda: jax.block_until_ready(c_eigh(kn))),
                    "kernel_bytes": n * n * 8}

    def dense_lobpcg(k, kk):
        return linalg.lobpcg_eigh(lambda v: k @ v, n, d, key=kk, dtype=f64, max_iter=args.topd_max_iter)

    rows["lobpcg"] = lobpcg_row("lobpcg", dense_lobpcg, kn, key)
    rows["lobpcg"]["kernel_bytes"] = n * n * 8
    # 4. baselines on the same materialised kernel
    kn_np = np.asarray(kn)
    rows["scipy_eigh_subset"] = {**timed("scipy_eigh_subset", lambda: np_top_d_scipy(kn_np, d)),
                                 "kernel_bytes": n * n * 8}
    if args.topd_numpy_full:
        rows["numpy_eigh_full"] = {**timed("numpy_eigh_full", lambda: np_top_d_numpy(kn_np, d)),
                                   "kernel_bytes": n * n * 8}
    rows["kernel_build"] = kernel_row
    # agreement with the exact eigenspace, and with the baseline
    base_u = np.asarray(out["scipy_eigh_subset"][1])
    passed = True
    for name, (w, u) in out.items():
        agree = subspace_agreement(u, q)
        agree["eig_max_abs_err"] = float(np.abs(np.asarray(w, np.float64) - lam_exact).max())
        agree["sin_theta_max_vs_scipy"] = subspace_agreement(u, np.linalg.qr(base_u)[0])["sin_theta_max"]
        ok = agree["sin_theta_max"] <= SIN_TOL and agree["eig_max_abs_err"] <= EIG_TOL
        rows[name].update(agreement=agree, passed=ok)
        passed &= ok
    t_base = rows["scipy_eigh_subset"]["s"]
    for name in ("eigh", "lobpcg", "lobpcg_matfree"):
        rows[name]["ratio_scipy_over_eigenkit"] = t_base / rows[name]["s"]
    for name in ("eigh", "lobpcg"):
        rows[name]["end_to_end_s"] = kernel_row["s"] + rows[name]["s"]
    # end to end: SciPy needs the kernel too (eigenkit's build time is charged to it)
    rows["lobpcg_matfree"]["ratio_scipy_end_to_end_over_eigenkit"] = (kernel_row["s"] + t_base) / \
        rows["lobpcg_matfree"]["s"]
    if "numpy_eigh_full" in rows:
        rows["numpy_eigh_full"]["ratio_over_scipy_subset"] = rows["numpy_eigh_full"]["s"] / t_base
    ab = None
    if args.ab_rounds > 0:
        ab = interleaved_ab({k: runs[k] for k in ("eigh", "lobpcg_matfree", "scipy_eigh_subset")}, args.ab_rounds,
                            [("scipy_eigh_subset", "eigh"), ("scipy_eigh_subset", "lobpcg_matfree")])
    return {"length": length, "n_points": n, "d": d, "alpha": a, "gap": gap, "dtype": "float64 all sides",
            "kernel": "K / n, K = masking kernel of the whole cube with itself",
            "repeats": reps, "repeats_note": "steady state = median of --topd-repeats calls after a first (warm-up) "
                                             "call; default 1 because a dense 16k eigh takes minutes",
            "lobpcg": {"max_iter": args.topd_max_iter, "key": 0,
                       "stop": "lobpcg_standard: every residual < eps * 10 * n * (lambda + |A u|)",
                       "converged_flag_tol": "max relative residual <= sqrt(eps)"},
            "tolerance": {"sin_theta_max": SIN_TOL, "eig_max_abs_err": EIG_TOL}, "passed": bool(passed),
            "peak_rss_mb_at_end": peak_rss_mb(), "rows": rows, "interleaved_ab": ab}


def build_parser():
    """The command line (``_common.parser`` plus the sizes and groups)."""
    p = parser(__doc__, out="experiments/benchmarks/results/rkhs.json", repeats=5)
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--lam", type=float, default=1e-4)
    p.add_argument("--only", choices=["all", "base", "topd"], default="all",
                   help="base: the kernel / krr / spectrum rows; topd: the top-d eigenspace group")
    p.add_argument("--topd-length", type=int, default=14, help="top_d on the 2^L cube (14: 16,384 points)")
    p.add_argument("--topd-repeats", type=int, default=1, help="top_d steady-state repetitions (16k eigh: minutes)")
    p.add_argument("--topd-max-iter", type=int, default=200, help="LOBPCG iteration cap")
    p.add_argument("--topd-block", type=int, default=1024, help="rows per kernel block of the matrix-free matvec")
    p.add_argument("--topd-numpy-full", action="store_true", help="also time numpy.linalg.eigh (full) in top_d")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs (seconds); timings meaningless")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    threads = pin_threads(args.threads)  # before JAX's backend starts: XLA sizes its pool from the affinity
    load_before = check_load("before")
    before = machine_info()
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from eigenkit.methods import rkhs

    result = {"benchmark": "rkhs", "baseline": "NumPy/SciPy formula of the same steps (no official code)",
              "dtype": "float64 both sides", "only": args.only, "alpha": args.alpha,
              "threads": {**threads, "cpu_count": os.cpu_count()}, "machine_before": before,
              "loadavg_before": load_before}
    if args.only in ("all", "base"):
        rows, correctness = base_rows(args, jax, jnp, rkhs)
        result.update(length=args.length, n_points=2 ** args.length, n_labels=args.n, ridge=args.lam, rows=rows,
                      correctness=correctness)
    if args.only in ("all", "topd"):
        result["top_d"] = top_d_rows(args, jax, jnp, rkhs)
    result["threads"]["measured_parallelism"] = {
        **{k: r["measured_parallelism"] for k, r in result.get("rows", {}).items()},
        **{f"top_d/{k}": r["cpu_over_wall"] for k, r in result.get("top_d", {}).get("rows", {}).items()
           if "cpu_over_wall" in r}}
    result["loadavg_after"] = check_load("after")
    write_result(result, args.out)
    if "top_d" in result and not result["top_d"]["passed"]:
        import sys

        print(f"correctness check failed: a top_d method is off the exact eigenspace (sin > {SIN_TOL}) or "
              f"eigenvalues (> {EIG_TOL}); see {args.out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
