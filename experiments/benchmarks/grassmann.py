"""One Riemannian SGD step on C Grassmann bases (the GCR head): eigh-form vs SVD-form geodesic vs official PyTorch.

    python -m experiments.benchmarks.grassmann --out results/bench_grassmann.json \
        [--C 1000 --D 2048 --k 8] [--official-src PATH_TO_innerlee_GCR] [--threads 2] [--ab-rounds R]
    python -m experiments.benchmarks.grassmann --official-src PATH --threads 1 --ab-rounds 20 \
        --out /tmp/grassmann_1thread.json   # the single-thread control, ours and official interleaved
    python -m experiments.benchmarks.grassmann --C 10 --D 64 --k 4 --repeats 2 --out /tmp/g.json  # checks it runs

``--threads N`` pins both sides to N cores (``_common.pin_threads``; recorded with the measured CPU/wall ratio of
each side under ``threads``); ``--ab-rounds R`` also times ``rsgd_eigh`` and the official step interleaved for R
rounds in one process (``interleaved_ab``; only with ``--official-src``).

Each variant does the full step the GCR optimiser does, in float32: momentum buffer update (Euclidean rule),
tangent projection, geodesic step, no re-orthonormalisation (timed apart: ``reorth_*`` rows). Ours are jitted with the
parameters and buffer donated, so XLA may update in place. The official step is ``gcr/rsgd.py``'s ``RSGD.step``
imported as in ``experiments/gcr/make_parity_fixtures.py`` (stub mmpretrain registries; on CPU its CUDA-only
``driver='gesvda'`` keyword is dropped). Correctness first: all variants start from the same (P, buffer, gradient) and
must agree on the new subspaces (max principal-angle distance reported). Compile time and steady state (median of
``--repeats`` timed calls, ``block_until_ready``) are reported apart.
"""

from __future__ import annotations

import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eigenkit import manifolds as mf
from experiments.benchmarks._common import (
    call_times,
    check_load,
    interleaved_times,
    measured_parallelism,
    median_time,
    parser,
    pin_threads,
    write_result,
)

_timeit = median_time


def _manual_step(exp_fn, lr: float, mu: float):
    """The same step written from the public primitives with a chosen exp map, jitted with donation."""

    def step(p, m, g):
        m = mu * m + g
        return exp_fn(p, mf.grassmann_project(p, m), -lr), m

    return jax.jit(step, donate_argnums=(0, 1))


def _rsgd_step(lr: float, mu: float):
    """``riemannian_sgd`` exactly as users run it (update + apply_updates), jitted with donation."""
    tx = mf.riemannian_sgd(lr, mu, reorth_every=0)

    def step(p, m, g):
        u, st = tx.update(g, mf.RiemannianSGDState(jnp.ones([], jnp.int32), m), p)
        return optax.apply_updates(p, u), st.momentum

    return jax.jit(step, donate_argnums=(0, 1))


def bench_jax(name, step, p0, m0, g, repeats):
    mk = lambda: [jnp.array(p0), jnp.array(m0)]  # noqa: E731
    p, m = mk()
    t0 = time.perf_counter()
    compiled = step.lower(p, m, g).compile()
    compile_s = time.perf_counter() - t0
    p, m = compiled(p, m, g)
    result = np.asarray(p)
    holder = mk()

    def run():
        holder[0], holder[1] = compiled(holder[0], holder[1], g)
        jax.block_until_ready(holder[0])

    run()
    times = call_times(run, repeats)
    return {"name": name, "compile_s": compile_s, "step_s": float(np.median(times)), "step_min_s": float(min(times)),
            "run": run}, result


def bench_official(src: pathlib.Path, p0, m0, g, lr, mu, repeats, threads):
    import torch

    torch.set_num_threads(threads)
    from experiments._official import load_module_from_file
    from experiments.gcr.make_parity_fixtures import install_cpu_svd_shim, install_stubs

    install_stubs()
    install_cpu_svd_shim()
    rsgd = load_module_from_file(src / "gcr" / "rsgd.py", "gcr_official_rsgd_bench")
    c, d, k = p0.shape
    to_w = lambda a: torch.from_numpy(np.ascontiguousarray(np.swapaxes(a, -1, -2).reshape(c * k, d)))  # noqa: E731
    w = torch.nn.Parameter(to_w(p0))
    w.geometry = [k] * c
    opt = rsgd.RSGD([w], lr=lr, momentum=mu, reorth_step=10**9, lr_factor=1.0)
    opt.state[w]["momentum_buffer"] = to_w(m0).clone()
    w.grad = to_w(np.asarray(g))
    rsgd.OPT_ITER = 1  # skip the step-0 QR (ours is timed without re-orthonormalisation too)
    opt.step()
    result = np.swapaxes(w.detach().numpy().reshape(c, k, d), -1, -2).copy()

    def run():
        rsgd.OPT_ITER = 1
        opt.step()

    times = call_times(run, repeats)
    return {"name": "official_torch_rsgd", "step_s": float(np.median(times)), "step_min_s": float(min(times)),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "run": run}, result


def build_parser():
    """The command line (``_common.parser``'s ``--out --repeats --threads --ab-rounds`` plus the sizes)."""
    ap = parser(__doc__, out="results/bench_grassmann.json")
    ap.add_argument("--C", type=int, default=1000)
    ap.add_argument("--D", type=int, default=2048)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--official-src", type=pathlib.Path, default=None)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)  # before the first jax array: XLA sizes its pool from the affinity
    load_before = check_load("before")
    c, d, k = args.C, args.D, args.k
    key = jax.random.key(0)
    k1, k2, k3 = jax.random.split(key, 3)
    p0 = np.asarray(mf.grassmann_random_point((c, d, k), key=k1, dtype=jnp.float32))
    m0 = np.asarray(0.01 * jax.random.normal(k2, (c, d, k), jnp.float32))
    g = 0.01 * jax.random.normal(k3, (c, d, k), jnp.float32)
    lr, mu = 0.1, 0.9

    rows, outs = [], {}
    for name, step in (("rsgd_eigh", _rsgd_step(lr, mu)), ("eigh_exp", _manual_step(mf.grassmann_exp, lr, mu)),
                       ("svd_exp", _manual_step(mf.grassmann_exp_svd, lr, mu))):
        row, outs[name] = bench_jax(name, step, p0, m0, g, args.repeats)
        rows.append(row)
    pj = jnp.asarray(p0)
    for r in (mf.Retraction.POLAR, mf.Retraction.QR_SIGNFIXED):  # the periodic re-orthonormalisation, timed apart
        reorth = jax.jit(lambda x, r=r: mf.qr_orthonormalize(x, r))
        jax.block_until_ready(reorth(pj))
        rows.append({"name": f"reorth_{r.name.lower()}",
                     "step_s": _timeit(lambda f=reorth: jax.block_until_ready(f(pj)), args.repeats)})
    if args.official_src is not None:
        row, outs["official"] = bench_official(args.official_src.resolve(), p0, m0, g, lr, mu, args.repeats,
                                               args.threads)
        rows.append(row)

    runs = {r.pop("name"): r.pop("run") for r in [dict(x) for x in rows if "run" in x]}
    for r in rows:
        r.pop("run", None)
    threads["jax_measured_parallelism"] = measured_parallelism(runs["rsgd_eigh"])
    if "official_torch_rsgd" in runs:
        threads["torch_threads"] = next(r["threads"] for r in rows if r["name"] == "official_torch_rsgd")
        threads["torch_measured_parallelism"] = measured_parallelism(runs["official_torch_rsgd"])
    ab = None
    if args.ab_rounds and "official_torch_rsgd" in runs:
        ab = interleaved_times({"rsgd_eigh": runs["rsgd_eigh"], "official_torch_rsgd": runs["official_torch_rsgd"]},
                               args.ab_rounds)
        ab["official_over_rsgd_median"] = ab["official_torch_rsgd"]["median_s"] / ab["rsgd_eigh"]["median_s"]
        ab["official_over_rsgd_min"] = ab["official_torch_rsgd"]["min_s"] / ab["rsgd_eigh"]["min_s"]

    # correctness: subspaces agree (principal-angle distance, per class, max over classes)
    dist = {}
    ref = jnp.asarray(outs["svd_exp"])
    for name, out in outs.items():
        dist[name] = float(jnp.max(mf.grassmann_dist(jnp.asarray(out), ref)))
        orth = np.abs(np.swapaxes(out, -1, -2) @ out - np.eye(k, dtype=np.float32)).max()
        dist[name + "_orthonormality"] = float(orth)
    if max(v for n, v in dist.items() if not n.endswith("orthonormality")) > 1e-2:
        raise SystemExit(f"correctness check failed: {dist}")
    t = {r["name"]: r["step_s"] for r in rows}
    result = {
        "benchmark": "grassmann_rsgd_step", "command": "python -m experiments.benchmarks.grassmann "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]), "loadavg_before": load_before,
        "loadavg_after": check_load("after"), "threads": threads, "interleaved_ab": ab,
        "C": c, "D": d, "k": k, "dtype": "float32",
        "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(), "rows": rows, "max_grassmann_dist_vs_svd": dist,
        "ratios": {
            "svd_over_eigh": t["svd_exp"] / t["eigh_exp"],
            "svd_over_rsgd": t["svd_exp"] / t["rsgd_eigh"],
            **({"official_over_rsgd": t["official_torch_rsgd"] / t["rsgd_eigh"]} if "official_torch_rsgd" in t else {}),
        },
        "bytes_touched_estimate_MB": 5 * c * d * k * 4 / 1e6,  # read P, g, m; write P, m
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
