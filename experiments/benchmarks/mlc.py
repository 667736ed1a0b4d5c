"""MLC loss + gradient on one batch, eigenkit (JAX) vs the CPP/MLC PyTorch code (``LeslieTrue/CPP``) in the same run.

    python -m experiments.benchmarks.mlc --official-src PATH_TO_LeslieTrue_CPP \\
        [--out experiments/benchmarks/results/mlc.json] [--threads N] [--repeats 5] [--ab-rounds R] [--n 1024 --d 128]
    python -m experiments.benchmarks.mlc --official-src PATH --n 64 --d 16 --repeats 2 --out /tmp/mlc.json  # smoke
    python -m experiments.benchmarks.mlc --official-src PATH --threads 1 --out /tmp/mlc_1thread.json  # 1-core control

One training step's loss and gradient of MLC (Ding et al., ICCV 2023) at batch ``n = 1024``, feature width
``d = 128`` (CPP's CIFAR setting), float32 on both sides, settings of CPP's ``main.py``: ``MLCLoss(eps=0.1,
gamma=1)`` (CPP's eps is ε²), ``SinkhornDistance(eta=0.175, max_iter=5)`` on ``|c cᵀ|``, ``pigam = 0.05``. From
the two heads' raw outputs ``(z0, c0)`` (seeded normals) to ``(loss, ∂loss/∂z0, ∂loss/∂c0)``:

* **official** — CPP's ``loss/loss_fn.py`` and ``model/sink_distance.py`` imported unmodified from
  ``--official-src`` (as ``experiments/mlc/make_parity_fixtures.py`` does; commit recorded, pinned
  ``cb39bdc65f346b4cb5950d14af2e393a5f6a3566``): ``F.normalize`` both, ``Pi = SinkhornDistance(|c cᵀ|[None])[0]·n``,
  ``MLCLoss(z, Pi)[0] + pigam·½‖Pi‖²``, ``torch.autograd.grad`` w.r.t. ``(z0, c0)`` — ``main.py``'s graph;
* **eigenkit_stop_v** — ``jax.jit(jax.value_and_grad(...))`` of ``sphere_normalize`` +
  :func:`eigenkit.methods.mlc.mlc_loss` (``grad_mode=SinkhornGrad.STOP_V``, CPP's gradient semantics), compiled
  ahead (``lower().compile()``, timed apart);
* **eigenkit_unrolled** — the same with ``grad_mode=UNROLLED`` (the exact derivative of the 5-step Sinkhorn map:
  same loss and ``∂/∂z0``, a different ``∂/∂c0`` by design, so only its forward and ``∂/∂z0`` are checked).

Correctness first (the run stops before timing if it fails): on the same inputs, eigenkit float32 vs CPP float32
(max abs differences of loss, rate, compress, reg and both gradients are recorded), and both vs a float64 reference
— CPP run in float64 (``torch.set_default_dtype``; its float32 marginals cost ~1e-7 relative, see the fixture
script). eigenkit must be within ``max(stop, 3 × CPP float32 error)`` of it (relative: scalars over ``max(1,
|ref|)``, gradients over ``max |ref|``; stops 1e-4 and 1e-2). The compiled HLO is checked for float64 ops.

Timing: compile, first call and steady state apart; steady state = :func:`_common.interleaved_times` over
``--repeats`` rounds (every side once per round, rotating order), median and min; ratios official / eigenkit (> 1:
eigenkit faster). Threads: both sides pinned to ``--threads`` cores (``_common.pin_threads``: the CPU affinity for
XLA, ``set_num_threads`` for torch; default all available), verified by the measured CPU/wall ratio of each side.
``--ab-rounds R`` (> 0) sets the number of interleaved rounds instead of ``--repeats`` (the steady state is always
interleaved here; ``interleaved_ab`` in the JSON names the rounds and points at the rows).
The load average is recorded before and after: **time only on an idle machine**. Without ``--official-src`` only
the eigenkit rows run (baseline "none"), checked against eigenkit in float64 instead.
"""

from __future__ import annotations

import math
import os
import pathlib
import sys
import time

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    interleaved_times,
    machine_info,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)
from experiments.mlc.make_parity_fixtures import EPS_SQ, ETA, GAMMA, N_ITER, PIGAM, import_official, official_commit

SCALAR_STOP, GRAD_STOP, FLOOR_FACTOR = 1e-4, 1e-2, 3.0
KEYS = ("loss", "rate", "compress", "reg", "grad_z0", "grad_c0")


def _data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((n, d)).astype(np.float32)


# ------------------------------------------------------------------------------------------------- official


def official_step(src: pathlib.Path, threads: int):
    """``step(z0, c0) -> dict`` of CPP's loss and gradients (``main.py``'s graph) on torch leaf tensors."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    loss_fn, sink = import_official(src)
    crit = loss_fn.MLCLoss(eps=EPS_SQ, gamma=GAMMA)
    layer = sink.SinkhornDistance(ETA, max_iter=N_ITER)

    def step(z0, c0):
        z, c = F.normalize(z0, 2), F.normalize(c0, 2)
        pi = layer((c @ c.T).abs().unsqueeze(0))[0]
        pi = (pi * pi.shape[-1])[0]
        obj, parts = crit(z, pi)
        reg = 0.5 * pi.norm() ** 2
        loss = obj + PIGAM * reg
        gz, gc = torch.autograd.grad(loss, (z0, c0))
        return {"loss": loss.detach(), "rate": parts[0], "compress": parts[1], "reg": reg.detach(), "grad_z0": gz,
                "grad_c0": gc}

    return step


def run_official(src: pathlib.Path, threads: int, z0: np.ndarray, c0: np.ndarray):
    """The timed float32 closure, its outputs and the float64 reference outputs (both as NumPy float64)."""
    import torch

    step = official_step(src, threads)
    zt, ct = (torch.from_numpy(a).requires_grad_(True) for a in (z0, c0))

    def run():
        return step(zt, ct)

    t0 = time.perf_counter()
    out32 = _np_out(run())
    first = time.perf_counter() - t0
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # MLCLoss's torch.eye follows the default dtype
    try:
        out64 = _np_out(step(*(torch.from_numpy(a.astype(np.float64)).requires_grad_(True) for a in (z0, c0))))
    finally:
        torch.set_default_dtype(prev)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "first_call_s": first,
            "commit": official_commit(src)}
    return run, out32, out64, info


def _np_out(out: dict) -> dict:
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float64) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------- eigenkit


def eigenkit_fn(grad_mode):
    """``jit(value_and_grad)`` of normalisation + membership + objective w.r.t. the raw ``(z0, c0)``."""
    import jax

    from eigenkit.methods import mlc

    def loss_fn(z0, c0):
        loss, aux = mlc.mlc_loss(mlc.sphere_normalize(z0), mlc.sphere_normalize(c0), eps=math.sqrt(EPS_SQ), eta=ETA,
                                 n_iter=N_ITER, gamma=GAMMA, pigam=PIGAM, grad_mode=grad_mode)
        return loss, {k: aux[k] for k in ("rate", "compress", "reg")}

    return jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))


def _jax_out(res) -> dict:
    (loss, aux), (gz, gc) = res
    return {"loss": loss, **aux, "grad_z0": gz, "grad_c0": gc}


def run_eigenkit(grad_mode, z0: np.ndarray, c0: np.ndarray):
    import jax
    import jax.numpy as jnp

    z, c = jnp.asarray(z0), jnp.asarray(c0)
    fn = eigenkit_fn(grad_mode)
    t0 = time.perf_counter()
    lowered = fn.lower(z, c)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(z, c))
    first = time.perf_counter() - t0
    row = {"compile_s": compile_s, "first_call_s": first, "hlo_has_f64": "f64" in lowered.as_text(),
           "out_dtypes": sorted({str(x.dtype) for x in jax.tree.leaves(out)})}
    try:
        row["xla_temp_mb"] = compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # noqa: BLE001 - not every backend reports it
        pass

    def run():
        return jax.block_until_ready(compiled(z, c))

    return run, {k: np.asarray(v, np.float64) for k, v in _jax_out(out).items()}, row


# ------------------------------------------------------------------------------------------------- checks


def _maxabs(a: dict, b: dict, keys=KEYS) -> dict:
    return {k: float(np.abs(a[k] - b[k]).max()) for k in keys}


def _rel(a: dict, ref: dict, keys=KEYS) -> dict:
    out = {}
    for k in keys:
        scale = max(1.0, float(np.abs(ref[k]))) if np.ndim(ref[k]) == 0 else float(np.abs(ref[k]).max())
        out[k] = float(np.abs(a[k] - ref[k]).max()) / scale
    return out


def check(outs: dict, ref64: dict, official32: dict | None) -> dict:
    """Differences recorded in the JSON; raises ``SystemExit`` when an eigenkit row is off."""
    checks = {"reference": "CPP float64" if official32 is not None else "eigenkit float64 (no --official-src)"}
    floor = _rel(official32, ref64) if official32 is not None else {k: 0.0 for k in KEYS}
    if official32 is not None:
        checks["official_f32_rel_vs_f64"] = floor
    failed = []
    for name, out in outs.items():
        keys = KEYS if name != "eigenkit_unrolled" else tuple(k for k in KEYS if k != "grad_c0")
        rel = _rel(out, ref64, keys)
        checks[f"{name}_rel_vs_f64"] = rel
        if official32 is not None:
            checks[f"{name}_max_abs_diff_vs_official_f32"] = _maxabs(out, official32, keys)
        for k, v in rel.items():
            stop = max(SCALAR_STOP if k in ("loss", "rate", "compress", "reg") else GRAD_STOP, FLOOR_FACTOR * floor[k])
            if not v <= stop:
                failed.append(f"{name}.{k}: {v:.3g} > {stop:.3g}")
    if "eigenkit_unrolled" in outs:
        checks["unrolled_vs_stop_v_grad_c0_rel"] = _rel(outs["eigenkit_unrolled"], outs["eigenkit_stop_v"],
                                                        ("grad_c0",))["grad_c0"]
    if failed:
        raise SystemExit(f"correctness check failed: {failed}\n{checks}")
    return checks


# ------------------------------------------------------------------------------------------------- main


def build_parser():
    """The command line (``_common.parser``; ``--threads`` defaults to all available cores here)."""
    ap = parser(__doc__, out="experiments/benchmarks/results/mlc.json", threads=len(os.sched_getaffinity(0)))
    ap.add_argument("--official-src", type=pathlib.Path, default=None,
                    help="root of LeslieTrue/CPP (holds loss/ and model/); without it only eigenkit rows run")
    ap.add_argument("--n", type=int, default=1024, help="batch size")
    ap.add_argument("--d", type=int, default=128, help="feature width (both heads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-unrolled", action="store_true", help="skip the grad_mode=UNROLLED row")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)  # before JAX's backend starts: both sides get the same cores
    import jax

    jax.config.update("jax_enable_x64", True)  # only for the float64 reference without torch; timed rows are float32
    from eigenkit.linalg import SinkhornGrad

    machine_before = machine_info()
    load_before = check_load("before")
    z0, c0 = _data(args.n, args.d, args.seed)

    runs, outs, rows = {}, {}, {}
    modes = {"eigenkit_stop_v": SinkhornGrad.STOP_V}
    if not args.no_unrolled:
        modes["eigenkit_unrolled"] = SinkhornGrad.UNROLLED
    for name, mode in modes.items():
        runs[name], outs[name], rows[name] = run_eigenkit(mode, z0, c0)
    official = off32 = None
    if args.official_src is not None:
        runs["official"], off32, ref64, official = run_official(args.official_src.resolve(), args.threads, z0, c0)
        baseline = "official CPP (PyTorch) MLCLoss + SinkhornDistance"
    else:
        ref = eigenkit_fn(SinkhornGrad.STOP_V)(z0.astype(np.float64), c0.astype(np.float64))
        ref64 = {k: np.asarray(v, np.float64) for k, v in _jax_out(ref).items()}
        baseline = "none (no --official-src: eigenkit rows only, checked against eigenkit float64)"
    checks = check(outs, ref64, off32)
    checks["hlo_has_f64"] = {k: r["hlo_has_f64"] for k, r in rows.items()}

    threads["jax_measured_parallelism"] = measured_parallelism(runs["eigenkit_stop_v"], 2)
    if official is not None:
        threads["torch"] = official["threads"]
        threads["torch_measured_parallelism"] = measured_parallelism(runs["official"], 2)
    rounds = args.ab_rounds or args.repeats
    times = interleaved_times(runs, rounds)
    for name, t in times.items():
        rows.setdefault(name, {}).update(t)
    if official is not None:
        rows["official"]["first_call_s"] = official["first_call_s"]
    ratios = {}
    if official is not None:
        for name in modes:
            ratios[f"official_over_{name}_median"] = times["official"]["median_s"] / times[name]["median_s"]
            ratios[f"official_over_{name}_min"] = times["official"]["min_s"] / times[name]["min_s"]
    if "eigenkit_unrolled" in times:
        ratios["unrolled_over_stop_v_median"] = times["eigenkit_unrolled"]["median_s"] / \
            times["eigenkit_stop_v"]["median_s"]

    result = {
        "benchmark": "mlc_loss_grad", "shape": {"n": args.n, "d": args.d},
        "settings": {"eps_sq_cpp": EPS_SQ, "eps": math.sqrt(EPS_SQ), "eta": ETA, "n_iter": N_ITER, "gamma": GAMMA,
                     "pigam": PIGAM, "abs_similarity": True},
        "dtype": "float32 (both sides; float64 only for the reference of the check)",
        "baseline": baseline,
        "official": None if official is None else {k: official[k] for k in ("commit", "torch")}
        | {"src": str(args.official_src)},
        "threads": threads, "rows": rows, "checks": checks, "ratios": ratios,
        "interleaved_ab": {"rounds": rounds, "sides": list(times),
                           "where": "rows[*].median_s / min_s and ratios (the steady state is always interleaved)"},
        "loadavg_before": load_before, "loadavg_after": check_load("after"), "machine_before": machine_before,
        "command": "python -m experiments.benchmarks.mlc " + " ".join(argv if argv is not None else sys.argv[1:]),
        "repeats": args.repeats, "python": sys.version.split()[0],
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
