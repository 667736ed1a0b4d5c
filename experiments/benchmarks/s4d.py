"""S4D kernel and layer: eigenkit (naive vs chunked Vandermonde) side by side with the official PyTorch S4D.

    python -m experiments.benchmarks.s4d_kernel --out results/bench_s4d_kernel.json \\
        [--official-src PATH_TO_state-spaces/s4] [--H 256 --N 64 --L 4096 --batch 16] [--threads 2]

Each measurement runs in its own subprocess (so peak RSS is per workload) with ``--threads`` intra-op threads for
both JAX (XLA CPU) and torch. Reported per case: correctness vs a float64 NumPy reference (kernel) or vs each
other (layer), compile / first-call time and steady-state time apart (median of ``--repeats``, ``block_until_ready``),
peak RSS increase of the workload, XLA's buffer estimate (``memory_analysis``), achieved GFLOP/s of the kernel
(``2·H·N·L`` flops of the GEMM form) against a measured float32 matmul peak, and ratios official / eigenkit.

Cases: ``kernel`` = K (H, L) from (dt, A, C) (S4D-Lin, ZOH); ``kernel_grad`` = K and its VJP; ``layer`` = S4D layer
(SSM conv + GELU + Linear/GLU) forward+backward on a (batch, L, H) input.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timeit(fn, repeats):
    from experiments.benchmarks._common import first_and_median

    return first_and_median(fn, repeats)


def worker_jax(args) -> dict:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}")
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
    base = _rss_mb()
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
            out["gflop"] = 2 * H * N * L / 1e9
        first, steady = _timeit(lambda: jax.block_until_ready(comp(A, C, dt)), args.repeats)
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
        first, steady = _timeit(lambda: jax.block_until_ready(comp(st, u)), args.repeats)
    out.update(first_call_s=first, steady_s=steady, peak_rss_increase_mb=_peak_mb() - base)
    if args.case == "kernel":
        out["gflop_per_s"] = out["gflop"] / steady
        a = jnp.ones((1024, 1024), jnp.float32)
        mm = jax.jit(lambda a: a @ a)
        _, t = _timeit(lambda: jax.block_until_ready(mm(a)), 5)
        out["matmul_peak_gflop_per_s"] = 2 * 1024**3 / 1e9 / t
    return out


def worker_torch(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from experiments.s4d.make_parity_fixtures import import_official

    s4d, _ = import_official(pathlib.Path(args.official_src).resolve())
    H, N, L, Bt = args.H, args.N, args.L, args.batch
    torch.manual_seed(0)
    out: dict = {"impl": "official_torch", "case": args.case, "torch": torch.__version__}
    base = _rss_mb()
    if args.case in ("kernel", "kernel_grad"):
        kern = s4d.S4DKernel(H, N=N)
        g = torch.randn(H, L)

        def run():
            if args.case == "kernel":
                with torch.no_grad():
                    return kern(L)
            kern.zero_grad(set_to_none=True)
            (kern(L) * g).sum().backward()

        if args.case == "kernel":
            out["gflop"] = 2 * H * N * L / 1e9
    else:
        layer = s4d.S4D(H, d_state=N, dropout=0.0, transposed=False)
        u = torch.randn(Bt, L, H)

        def run():
            layer.zero_grad(set_to_none=True)
            y, _ = layer(u)
            loss = (y**2).mean()
            loss.backward()
            return loss

    first, steady = _timeit(run, args.repeats)
    out.update(first_call_s=first, steady_s=steady, peak_rss_increase_mb=_peak_mb() - base)
    if args.case == "kernel":
        out["gflop_per_s"] = out["gflop"] / steady
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results/bench_s4d_kernel.json"))
    ap.add_argument("--official-src", default=None)
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--L", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default="kernel,kernel_grad,layer")
    ap.add_argument("--worker", choices=["jax", "torch"], default=None)
    ap.add_argument("--method", default="chunked")
    ap.add_argument("--case", default="kernel")
    ap.add_argument("--batch-chunks", type=int, default=1, help="S4D layer batch_chunks (layer case)")
    args = ap.parse_args(argv)
    if args.worker:
        res = worker_jax(args) if args.worker == "jax" else worker_torch(args)
        print("RESULT " + json.dumps(res))
        return
    common = ["--H", str(args.H), "--N", str(args.N), "--L", str(args.L), "--batch", str(args.batch),
              "--threads", str(args.threads), "--repeats", str(args.repeats)]
    results = []
    for case in args.cases.split(","):
        runs = [["--worker", "jax", "--method", "naive"], ["--worker", "jax", "--method", "chunked"]]
        if case == "layer":  # plus the rematerialised batch-chunked layer (activation memory / 4)
            runs.append(["--worker", "jax", "--method", "chunked", "--batch-chunks", "4"])
        if args.official_src:
            runs.append(["--worker", "torch", "--official-src", args.official_src])
        row = {"case": case}
        for r in runs:
            cmd = [sys.executable, "-m", "experiments.benchmarks.s4d_kernel", *common, "--case", case, *r]
            p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
            line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                row[r[1] if r[1] != "jax" else f"eigenkit_{r[3]}"] = {"error": p.stderr[-2000:]}
                continue
            res = json.loads(line[0][7:])
            row[res["impl"]] = res
            print(json.dumps(res), flush=True)
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
    meta = {"H": args.H, "N": args.N, "L": args.L, "batch": args.batch, "threads": args.threads,
            "dtype": "float32", "nproc": os.cpu_count(), "loadavg_at_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from experiments.benchmarks._common import write_result

    write_result({"meta": meta, "results": results}, args.out)
    print(json.dumps({r["case"]: {k: v for k, v in r.items() if k.startswith(("speedup", "rss_ratio"))}
                      for r in results}, indent=2))


if __name__ == "__main__":
    main()
