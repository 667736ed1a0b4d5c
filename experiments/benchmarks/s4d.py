"""S4D kernel and layer: eigenkit (naive vs chunked Vandermonde) side by side with the official PyTorch S4D.

    python -m experiments.benchmarks.s4d --out results/bench_s4d.json \\
        [--official-src PATH_TO_state-spaces/s4] [--H 256 --N 64 --L 4096 --batch 16] [--threads 2] [--ab-rounds R]
    python -m experiments.benchmarks.s4d --quick --out /tmp/bench_s4d_quick.json   # tiny sizes: checks it runs
    python -m experiments.benchmarks.s4d --official-src PATH --threads 1 --ab-rounds 10 \
        --out /tmp/bench_s4d_1thread.json   # the single-thread control, with the interleaved A/B

Each measurement runs in its own subprocess (so peak RSS is per workload) with ``--threads`` intra-op threads for
both JAX (XLA CPU) and torch. Reported per case: correctness vs a float64 NumPy reference (kernel) or vs each
other (layer), compile / first-call time and steady-state time apart (median of ``--repeats``, ``block_until_ready``),
peak RSS increase of the workload, XLA's buffer estimate (``memory_analysis``), and ratios official / eigenkit.
Every worker records ``threads`` (``pin_threads``' report and the measured CPU/wall ratio of its steady-state call).
``--ab-rounds R`` (> 0) adds, per case, one more worker that builds ``eigenkit_naive``, ``eigenkit_chunked`` and (with
``--official-src``) ``official_torch`` in one process and times them interleaved for R rounds (``interleaved_ab`` of
the case's row, ratios ``ab_ratio_<a>_over_<b>_median``).

Cases: ``kernel`` = K (H, L) from (dt, A, C) (S4D-Lin, ZOH); ``kernel_grad`` = K and its VJP; ``layer`` = S4D layer
(SSM conv + GELU + Linear/GLU) forward+backward on a (batch, L, H) input.

Roofline: a ``matmul`` worker first measures this machine's float32 GEMM throughput (an ``M × M`` by ``M × M``
``jnp.matmul``, ``2·M³`` flops, same thread count; ``--matmul-size``); every kernel row then reports its achieved
GFLOP/s under the analytic flop count of :func:`kernel_flops` and that as a fraction of the measured matmul peak.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    measured_parallelism,
    parser,
    peak_rss_mb,
    pin_threads,
    rss_mb,
    write_result,
)

QUICK = {"H": 16, "N": 8, "L": 128, "batch": 4, "repeats": 2, "matmul_size": 256}  # batch: a multiple of 4


def kernel_flops(H: int, N: int, L: int, *, with_vjp: bool = False) -> int:
    """Analytic flop count of the S4D kernel ``K[h, l] = 2·Re Σ_{n < N/2} w[h, n]·z[h, n]^l`` (``l < L``).

    Per ``(h, n, l)`` the real part ``Re(w·z^l) = w_re·Re z^l - w_im·Im z^l`` is 2 multiplies and 2 adds (one of them
    the accumulation), so ``4·(N/2) = 2N`` flops per output ``(h, l)``::

        flops(kernel)        = 2·H·N·L
        flops(kernel + VJP)  = 3 · 2·H·N·L = 6·H·N·L

    The chunked method evaluates exactly this contraction as one batched GEMM ``(H, Q, N) × (H, N, T)``, ``Q·T >= L``
    (real and imaginary halves stacked on the ``N`` axis); its VJP is two GEMMs of the same size (cotangents of both
    factors). Not counted: the transcendental factors (``exp``, ``cos``, ``sin`` of ``O(H·N·(Q + T))`` entries),
    the fixed-point phases and the ``(exp(dtA) - 1)/A`` weights — the roofline fraction is therefore an upper bound on
    how GEMM-bound the kernel is.
    """
    fwd = 2 * H * N * L
    return 3 * fwd if with_vjp else fwd


def _set_xla_threads(threads: int) -> dict:
    """Pin this worker to ``threads`` cores before JAX starts (``_common.pin_threads``: the CPU affinity is what XLA's
    pool obeys; the ``intra_op_parallelism_threads=`` this used to append to ``XLA_FLAGS`` is not an XLA flag and was
    silently ignored, so JAX used every core). Returns ``pin_threads``' report."""
    return pin_threads(threads)


def _finish(out: dict, run, args, base: float, threads: dict) -> dict:
    """First call and steady state of ``run``, the peak-RSS increase since ``base``, then the measured parallelism."""
    first, steady = first_and_median(run, args.repeats)
    out.update(first_call_s=first, steady_s=steady, peak_rss_increase_mb=peak_rss_mb() - base)
    out["threads"] = {**threads, "measured_parallelism": measured_parallelism(run)}
    return out


def worker_matmul(args) -> dict:
    """float32 ``M × M`` matmul throughput: the machine's GEMM peak for the roofline (same threads as the rest)."""
    threads = _set_xla_threads(args.threads)
    import jax
    import jax.numpy as jnp
    import numpy as np

    m = args.matmul_size
    a = jax.random.normal(jax.random.key(0), (m, m), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (m, m), jnp.float32)
    f = jax.jit(jnp.matmul)
    t0 = time.perf_counter()
    comp = f.lower(a, b).compile()
    compile_s = time.perf_counter() - t0
    c = comp(a, b)
    k = min(m, 64)  # correctness on a corner block vs float64 NumPy
    ref = np.asarray(a, np.float64)[:k] @ np.asarray(b, np.float64)[:, :k]
    err = float(np.max(np.abs(np.asarray(c)[:k, :k] - ref)) / np.max(np.abs(ref)))
    first, steady = first_and_median(lambda: jax.block_until_ready(comp(a, b)), max(args.repeats, 3))
    flops = 2 * m**3
    return {"impl": "jax_matmul_f32", "case": "matmul", "M": m, "flops": flops, "compile_s": compile_s,
            "max_rel_err_vs_f64": err, "first_call_s": first, "steady_s": steady, "gflop_per_s": flops / 1e9 / steady,
            "threads": {**threads, "measured_parallelism": measured_parallelism(
                lambda: jax.block_until_ready(comp(a, b)))}}


def worker_jax(args) -> dict:
    threads = _set_xla_threads(args.threads)
    out, run, base = _jax_side(args)
    return _finish(out, run, args, base, threads)


def _jax_side(args):
    """One eigenkit case (``args.case``, ``args.method``) compiled, checked and called once: ``(row, run, base)``,
    ``run`` the steady-state call (blocks), ``base`` the RSS before the workload."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from eigenkit import ssm
    from eigenkit.methods.s4d import S4D

    method = ssm.KernelMethod[args.method.upper()]
    H, N, L, Bt = args.H, args.N, args.L, args.batch
    A, _ = ssm.diag_init(ssm.Init.LIN, N)
    A = jnp.broadcast_to(A, (H, N // 2))
    C = ssm.init_C((H, N // 2), key=jax.random.key(0))
    dt = jnp.exp(ssm.init_log_dt((H,), key=jax.random.key(1)))
    tag = f"_bc{args.batch_chunks}" if args.batch_chunks > 1 else ""
    out: dict = {"impl": f"eigenkit_{args.method}{tag}", "case": args.case}
    base = rss_mb()
    if args.case in ("kernel", "kernel_grad"):
        if args.case == "kernel":
            f = jax.jit(lambda A, C, dt: ssm.ssm_kernel(A, None, C, dt, L, method=method))
        else:
            g = jax.random.normal(jax.random.key(2), (H, L), jnp.float32)

            def loss(A, C, dt):
                return jnp.sum(ssm.ssm_kernel(A, None, C, dt, L, method=method) * g)

            f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
        t0 = time.perf_counter()
        comp = f.lower(A, C, dt).compile()
        out["compile_s"] = time.perf_counter() - t0
        mem = comp.memory_analysis()
        if mem is not None:
            out["xla_temp_mb"] = mem.temp_size_in_bytes / 2**20
        res = comp(A, C, dt)
        jax.block_until_ready(res)
        if args.case == "kernel":
            # correctness vs float64 numpy (first 8 channels)
            a, c = (np.asarray(x)[:8].astype(np.complex128) for x in (A, C))
            d = np.asarray(dt)[:8].astype(np.float64)
            z = d[:, None] * a
            ref = 2 * np.einsum("hn,hnl->hl", c * np.expm1(z) / a, np.exp(z[..., None] * np.arange(L))).real
            out["max_rel_err_vs_f64"] = float(np.max(np.abs(np.asarray(res)[:8] - ref)) / np.max(np.abs(ref)))

        def run():
            return jax.block_until_ready(comp(A, C, dt))
    else:
        layer = S4D(H, N, init=ssm.Init.LIN, kernel_method=method, batch_chunks=args.batch_chunks, rngs=nnx.Rngs(0))
        u = jax.random.normal(jax.random.key(3), (Bt, L, H), jnp.float32)
        gd, st, rest = nnx.split(layer, nnx.Param, ...)

        def loss(st, u):
            return jnp.mean(nnx.merge(gd, st, rest)(u) ** 2)

        f = jax.jit(jax.value_and_grad(loss))
        t0 = time.perf_counter()
        comp = f.lower(st, u).compile()
        out["compile_s"] = time.perf_counter() - t0
        mem = comp.memory_analysis()
        if mem is not None:
            out["xla_temp_mb"] = mem.temp_size_in_bytes / 2**20
        val, _ = comp(st, u)
        out["loss"] = float(val)

        def run():
            return jax.block_until_ready(comp(st, u))
    return out, run, base


def worker_torch(args) -> dict:
    import torch

    threads = pin_threads(args.threads)  # affinity + torch.set_num_threads, as the JAX workers
    threads["torch"] = torch.get_num_threads()
    res = _torch_side(args)
    if isinstance(res, dict):  # --check: the correctness row
        return res
    out, run, base = res
    return _finish(out, run, args, base, threads)


def _torch_side(args):
    """The official case built (``S4DKernel`` on eigenkit's parameters, or the ``S4D`` layer): ``(row, run, base)``
    as :func:`_jax_side`; with ``args.check`` (kernel cases) the correctness row instead."""
    import numpy as np
    import torch

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from experiments.s4d.make_parity_fixtures import import_official

    s4d, _ = import_official(pathlib.Path(args.official_src).resolve())
    H, N, L, Bt = args.H, args.N, args.L, args.batch
    torch.manual_seed(0)
    out: dict = {"impl": "official_torch", "case": args.case, "torch": torch.__version__}
    base = rss_mb()
    if args.case in ("kernel", "kernel_grad"):
        kern = s4d.S4DKernel(H, N=N)
        if args.check:
            return {**out, "check_vs_eigenkit": _check_official_kernel(kern, H, N, L, args.case == "kernel_grad")}
        g = torch.from_numpy(np.asarray(_load_eigenkit_params(kern, H, N, L)[3]))
        base = rss_mb()  # after the parameter loading (which starts JAX): the timed work's own increase below

        def run():
            if args.case == "kernel":
                with torch.no_grad():
                    return kern(L)
            kern.zero_grad(set_to_none=True)
            (kern(L) * g).sum().backward()
    else:
        layer = s4d.S4D(H, d_state=N, dropout=0.0, transposed=False)
        u = torch.randn(Bt, L, H)

        def run():
            layer.zero_grad(set_to_none=True)
            y, _ = layer(u)
            loss = (y**2).mean()
            loss.backward()
            return loss

    return out, run, base


def worker_ab(args) -> dict:
    """All sides of ``args.case`` in this one process, warmed up, then ``interleaved_ab`` over ``--ab-rounds``."""
    if args.official_src:
        import torch  # before pin_threads, which then sets its thread count
    threads = pin_threads(args.threads)
    sides = {}
    for method in ("naive", "chunked"):
        sides[f"eigenkit_{method}"] = _jax_side(argparse.Namespace(**{**vars(args), "method": method,
                                                                        "batch_chunks": 1}))[1]
    pairs = [("eigenkit_naive", "eigenkit_chunked")]
    if args.official_src:
        threads["torch"] = torch.get_num_threads()
        sides["official_torch"] = run = _torch_side(argparse.Namespace(**{**vars(args), "check": False}))[1]
        run()  # warm-up
        pairs += [("official_torch", "eigenkit_chunked"), ("official_torch", "eigenkit_naive")]
    return {"case": args.case, **interleaved_ab(sides, args.ab_rounds, pairs), "threads": threads}


def _load_eigenkit_params(kern, H: int, N: int, L: int):
    """Give the official ``S4DKernel`` eigenkit's parameters of the JAX workers (same ``diag_init`` / ``init_C`` /
    ``init_log_dt`` seeds), so both sides time the same kernel; returns ``(A, C, dt, g)`` as JAX arrays (``g``: the
    cotangent of the VJP case)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from eigenkit import ssm

    A, _ = ssm.diag_init(ssm.Init.LIN, N)
    A = jnp.broadcast_to(A, (H, N // 2))
    C = ssm.init_C((H, N // 2), key=jax.random.key(0))
    dt = jnp.exp(ssm.init_log_dt((H,), key=jax.random.key(1)))
    g = jax.random.normal(jax.random.key(2), (H, L), jnp.float32)
    a_np, c_np, dt_np = (np.asarray(x) for x in (A, C, dt))
    with torch.no_grad():
        kern.log_dt.copy_(torch.from_numpy(np.log(dt_np).astype(np.float32)))
        kern.C.copy_(torch.view_as_real(torch.from_numpy(c_np.astype(np.complex64))))
        kern.log_A_real.copy_(torch.from_numpy(np.log(-a_np.real).astype(np.float32)))
        kern.A_imag.copy_(torch.from_numpy(a_np.imag.astype(np.float32)))
    return A, C, dt, g


def _check_official_kernel(kern, H: int, N: int, L: int, grad: bool) -> dict:
    """Correctness before timing (its own worker, so its memory is not charged to the timed run): the official
    ``S4DKernel`` on eigenkit's parameters against ``eigenkit.ssm.ssm_kernel`` (chunked) — the kernel, and with
    ``grad`` the VJP of ``sum(K · g)`` w.r.t. C and log dt."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from eigenkit import ssm

    A, C, dt, g = _load_eigenkit_params(kern, H, N, L)

    def ours(A, C, dt):
        return ssm.ssm_kernel(A, None, C, dt, L, method=ssm.KernelMethod.CHUNKED)

    k_ours = np.asarray(ours(A, C, dt))
    with torch.no_grad():
        k_off = kern(L).numpy()
    res = {"kernel_max_rel_diff": float(np.max(np.abs(k_off - k_ours)) / np.max(np.abs(k_ours)))}
    ok = res["kernel_max_rel_diff"] < 1e-4
    if grad:
        gt = torch.from_numpy(np.asarray(g))
        kern.zero_grad(set_to_none=True)
        (kern(L) * gt).sum().backward()
        dc_off = torch.view_as_complex(kern.C.grad).numpy()
        dre, dim = jax.grad(lambda cr, ci: jnp.sum(ours(A, cr + 1j * ci, dt) * g), argnums=(0, 1))(C.real, C.imag)
        dc = np.asarray(dre) + 1j * np.asarray(dim)
        ddt_off = kern.log_dt.grad.numpy()
        ddt = np.asarray(jax.grad(lambda ld: jnp.sum(ours(A, C, jnp.exp(ld)) * g))(jnp.log(dt)))
        res["grad_C_max_rel_diff"] = float(np.max(np.abs(dc_off - dc)) / np.max(np.abs(dc)))
        res["grad_log_dt_max_rel_diff"] = float(np.max(np.abs(ddt_off - ddt)) / np.max(np.abs(ddt)))
        ok &= res["grad_C_max_rel_diff"] < 1e-3 and res["grad_log_dt_max_rel_diff"] < 1e-3
    res["passed"] = bool(ok)
    if not ok:
        raise SystemExit(f"official S4DKernel disagrees with eigenkit on the same parameters: {res}")
    return res


def _run_worker(common: list[str], extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "experiments.benchmarks.s4d", *common, *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        return {"error": p.stderr[-2000:]}
    res = json.loads(line[0][len("RESULT "):])
    print(json.dumps(res), flush=True)
    return res


def _add_roofline(res: dict, case: str, args, peak: float | None) -> None:
    """Achieved GFLOP/s of a kernel row under :func:`kernel_flops`, and its fraction of the matmul peak."""
    if case not in ("kernel", "kernel_grad") or "steady_s" not in res:
        return
    flops = kernel_flops(args.H, args.N, args.L, with_vjp=case == "kernel_grad")
    res["flops"] = flops
    res["gflop_per_s"] = flops / 1e9 / res["steady_s"]
    if peak:
        res["fraction_of_matmul_peak"] = res["gflop_per_s"] / peak


def build_parser():
    """The command line (``_common.parser`` plus sizes, cases and the worker options)."""
    ap = parser(__doc__, out="results/bench_s4d.json")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes (H 16, N 8, L 128, batch 4, 2 repeats, 256² matmul): checks the script end to "
                         "end; its timings mean nothing")
    ap.add_argument("--official-src", default=None)
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--L", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--matmul-size", dest="matmul_size", type=int, default=4096,
                    help="M of the float32 M x M matmul that measures the GEMM peak")
    ap.add_argument("--cases", default="kernel,kernel_grad,layer")
    ap.add_argument("--worker", choices=["jax", "torch", "matmul", "ab"], default=None)
    ap.add_argument("--method", default="chunked")
    ap.add_argument("--case", default="kernel")
    ap.add_argument("--batch-chunks", type=int, default=1, help="S4D layer batch_chunks (layer case)")
    ap.add_argument("--check", action="store_true", help=argparse.SUPPRESS)  # torch worker: correctness only
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.worker:
        res = {"jax": worker_jax, "torch": worker_torch, "matmul": worker_matmul, "ab": worker_ab}[args.worker](args)
        print("RESULT " + json.dumps(res))
        return
    common = ["--H", str(args.H), "--N", str(args.N), "--L", str(args.L), "--batch", str(args.batch),
              "--threads", str(args.threads), "--repeats", str(args.repeats), "--matmul-size", str(args.matmul_size)]
    threads = pin_threads(args.threads)  # this process runs no JAX; the workers inherit the mask and pin again
    load_before = check_load("before")
    matmul = _run_worker(common, ["--worker", "matmul"])
    peak = matmul.get("gflop_per_s")
    results = []
    for case in args.cases.split(","):
        runs = {"eigenkit_naive": ["--worker", "jax", "--method", "naive"],
                "eigenkit_chunked": ["--worker", "jax", "--method", "chunked"]}
        if case == "layer":  # plus the rematerialised batch-chunked layer (activation memory / 4)
            runs["eigenkit_chunked_bc4"] = ["--worker", "jax", "--method", "chunked", "--batch-chunks", "4"]
        row = {"case": case}
        if args.official_src:
            runs["official_torch"] = ["--worker", "torch", "--official-src", args.official_src]
            if case != "layer":  # correctness first, in its own process (the layer is pinned by the parity fixtures)
                chk = _run_worker(common, ["--case", case, *runs["official_torch"], "--check"])
                if "error" in chk:
                    raise SystemExit(f"{case}: official vs eigenkit check failed:\n{chk['error']}")
                row["check_official_vs_eigenkit"] = chk["check_vs_eigenkit"]
        for name, r in runs.items():
            res = _run_worker(common, ["--case", case, *r])
            if "error" in res:  # correctness first: a failed worker (or a failed official check) stops the run
                raise SystemExit(f"{case}/{name} failed:\n{res['error']}")
            _add_roofline(res, case, args, peak)
            row[name] = res
        if args.ab_rounds > 0:
            extra = ["--official-src", args.official_src] if args.official_src else []
            ab = _run_worker(common, ["--worker", "ab", "--case", case, "--ab-rounds", str(args.ab_rounds), *extra])
            if "error" in ab:
                raise SystemExit(f"{case}/interleaved A/B failed:\n{ab['error']}")
            row["interleaved_ab"] = ab
        o, nv = row.get("official_torch", {}), row.get("eigenkit_naive", {})
        if "steady_s" in o and "steady_s" in nv:  # same algorithm (materialised Vandermonde): the framework's share
            row["speedup_naive_vs_official_torch"] = o["steady_s"] / nv["steady_s"]
        for mine in ("eigenkit_chunked", "eigenkit_chunked_bc4"):
            ch = row.get(mine, {})
            short = mine.removeprefix("eigenkit_")
            for other in ("eigenkit_naive", "official_torch"):
                o = row.get(other, {})
                if "steady_s" in o and "steady_s" in ch:
                    row[f"speedup_{short}_vs_{other}"] = o["steady_s"] / ch["steady_s"]
                if "peak_rss_increase_mb" in o and ch.get("peak_rss_increase_mb", 0) > 0:
                    row[f"rss_ratio_{other}_over_{short}"] = o["peak_rss_increase_mb"] / ch["peak_rss_increase_mb"]
        results.append(row)
    meta = {"H": args.H, "N": args.N, "L": args.L, "batch": args.batch, "threads": args.threads, "quick": args.quick,
            "dtype": "float32", "nproc": os.cpu_count(), "loadavg_before": load_before,
            "loadavg_at_end": check_load("after"), "threads_pinned": "every worker: _common.pin_threads(--threads)",
            "command": "python -m experiments.benchmarks.s4d " + " ".join(argv if argv is not None else sys.argv[1:]),
            "ratios": "speedup_naive_vs_official_torch: same algorithm (JAX vs torch); speedup_chunked_vs_eigenkit_"
                      "naive: the algorithm (chunked Vandermonde GEMM vs materialised); chunked_vs_official: both",
            "flop_count": "kernel 2·H·N·L, kernel + VJP 6·H·N·L (kernel_flops); matmul 2·M³"}
    threads["measured_parallelism"] = {f"{r['case']}/{k}": v["threads"]["measured_parallelism"] for r in results
                                       for k, v in r.items() if isinstance(v, dict) and "threads" in v
                                       and k != "interleaved_ab"}
    write_result({"meta": meta, "threads": threads, "matmul_peak": matmul, "results": results}, args.out)
    summary = {r["case"]: {k: v for k, v in r.items() if k.startswith(("speedup", "rss_ratio"))} for r in results}
    summary["roofline"] = {f"{r['case']}/{impl}": round(v["fraction_of_matmul_peak"], 4) for r in results
                           for impl, v in r.items() if isinstance(v, dict) and "fraction_of_matmul_peak" in v}
    summary["matmul_peak_gflop_per_s"] = peak
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
