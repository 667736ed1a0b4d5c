"""S4D kernel and layer: eigenkit (naive vs chunked Vandermonde) side by side with the official PyTorch S4D.

    python -m experiments.benchmarks.s4d --out results/bench_s4d.json \\
        [--official-src PATH_TO_state-spaces/s4] [--H 256 --N 64 --L 4096 --batch 16] [--threads 2]
    python -m experiments.benchmarks.s4d --quick --out /tmp/bench_s4d_quick.json   # tiny sizes: checks it runs

Each measurement runs in its own subprocess (so peak RSS is per workload) with ``--threads`` intra-op threads for
both JAX (XLA CPU) and torch. Reported per case: correctness vs a float64 NumPy reference (kernel) or vs each
other (layer), compile / first-call time and steady-state time apart (median of ``--repeats``, ``block_until_ready``),
peak RSS increase of the workload, XLA's buffer estimate (``memory_analysis``), and ratios official / eigenkit.

Cases: ``kernel`` = K (H, L) from (dt, A, C) (S4D-Lin, ZOH); ``kernel_grad`` = K and its VJP; ``layer`` = S4D layer
(SSM conv + GELU + Linear/GLU) forward+backward on a (batch, L, H) input.

Roofline: a ``matmul`` worker first measures this machine's float32 GEMM throughput (an ``M × M`` by ``M × M``
``jnp.matmul``, ``2·M³`` flops, same thread count; ``--matmul-size``); every kernel row then reports its achieved
GFLOP/s under the analytic flop count of :func:`kernel_flops` and that as a fraction of the measured matmul peak.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

from experiments.benchmarks._common import first_and_median, parser, peak_rss_mb, pin_threads, rss_mb, write_result

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


def _set_xla_threads(threads: int) -> None:
    """Pin this worker to ``threads`` cores before JAX starts (``_common.pin_threads``: the CPU affinity is what XLA's
    pool obeys; the ``intra_op_parallelism_threads=`` this used to append to ``XLA_FLAGS`` is not an XLA flag and was
    silently ignored, so JAX used every core)."""
    pin_threads(threads)


def worker_matmul(args) -> dict:
    """float32 ``M × M`` matmul throughput: the machine's GEMM peak for the roofline (same threads as the rest)."""
    _set_xla_threads(args.threads)
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
            "max_rel_err_vs_f64": err, "first_call_s": first, "steady_s": steady, "gflop_per_s": flops / 1e9 / steady}


def worker_jax(args) -> dict:
    _set_xla_threads(args.threads)
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
        first, steady = first_and_median(lambda: jax.block_until_ready(comp(A, C, dt)), args.repeats)
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
        first, steady = first_and_median(lambda: jax.block_until_ready(comp(st, u)), args.repeats)
    out.update(first_call_s=first, steady_s=steady, peak_rss_increase_mb=peak_rss_mb() - base)
    return out


def worker_torch(args) -> dict:
    import torch

    pin_threads(args.threads)  # affinity + torch.set_num_threads, as the JAX workers
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from experiments.s4d.make_parity_fixtures import import_official

    s4d, _ = import_official(pathlib.Path(args.official_src).resolve())
    H, N, L, Bt = args.H, args.N, args.L, args.batch
    torch.manual_seed(0)
    out: dict = {"impl": "official_torch", "case": args.case, "torch": torch.__version__}
    base = rss_mb()
    if args.case in ("kernel", "kernel_grad"):
        kern = s4d.S4DKernel(H, N=N)
        g = torch.randn(H, L)

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

    first, steady = first_and_median(run, args.repeats)
    out.update(first_call_s=first, steady_s=steady, peak_rss_increase_mb=peak_rss_mb() - base)
    return out


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


def main(argv=None):
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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="kernel,kernel_grad,layer")
    ap.add_argument("--worker", choices=["jax", "torch", "matmul"], default=None)
    ap.add_argument("--method", default="chunked")
    ap.add_argument("--case", default="kernel")
    ap.add_argument("--batch-chunks", type=int, default=1, help="S4D layer batch_chunks (layer case)")
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.worker:
        res = {"jax": worker_jax, "torch": worker_torch, "matmul": worker_matmul}[args.worker](args)
        print("RESULT " + json.dumps(res))
        return
    common = ["--H", str(args.H), "--N", str(args.N), "--L", str(args.L), "--batch", str(args.batch),
              "--threads", str(args.threads), "--repeats", str(args.repeats), "--matmul-size", str(args.matmul_size)]
    matmul = _run_worker(common, ["--worker", "matmul"])
    peak = matmul.get("gflop_per_s")
    results = []
    for case in args.cases.split(","):
        runs = {"eigenkit_naive": ["--worker", "jax", "--method", "naive"],
                "eigenkit_chunked": ["--worker", "jax", "--method", "chunked"]}
        if case == "layer":  # plus the rematerialised batch-chunked layer (activation memory / 4)
            runs["eigenkit_chunked_bc4"] = ["--worker", "jax", "--method", "chunked", "--batch-chunks", "4"]
        if args.official_src:
            runs["official_torch"] = ["--worker", "torch", "--official-src", args.official_src]
        row = {"case": case}
        for name, r in runs.items():
            res = _run_worker(common, ["--case", case, *r])
            _add_roofline(res, case, args, peak)
            row[name] = res
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
            "dtype": "float32", "nproc": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
            "flop_count": "kernel 2·H·N·L, kernel + VJP 6·H·N·L (kernel_flops); matmul 2·M³"}
    write_result({"meta": meta, "matmul_peak": matmul, "results": results}, args.out)
    summary = {r["case"]: {k: v for k, v in r.items() if k.startswith(("speedup", "rss_ratio"))} for r in results}
    summary["roofline"] = {f"{r['case']}/{impl}": round(v["fraction_of_matmul_peak"], 4) for r in results
                           for impl, v in r.items() if isinstance(v, dict) and "fraction_of_matmul_peak" in v}
    summary["matmul_peak_gflop_per_s"] = peak
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
