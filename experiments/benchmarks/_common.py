"""The one timing / machine-info / JSON helper of the benchmark scripts."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
from collections.abc import Callable

import numpy as np


def parser(doc: str | None, *, out: str, repeats: int = 5, threads: int = 2) -> argparse.ArgumentParser:
    """The command line every benchmark starts from: ``--out`` (JSON path), ``--repeats``, ``--threads`` (default
    ``threads``; pass it to :func:`pin_threads`) and ``--ab-rounds`` (0 = off; see :func:`interleaved_ab`)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=out, help=f"JSON output (default {out})")
    p.add_argument("--repeats", type=int, default=repeats, help="timed repetitions (the median is reported)")
    p.add_argument("--threads", type=int, default=threads,
                   help=f"cores for both sides: XLA through the CPU affinity, torch/NumPy through their thread "
                        f"settings (pin_threads; default {threads}); 1 = the single-thread control")
    p.add_argument("--ab-rounds", type=int, default=0,
                   help="also time the sides interleaved round by round in one process (interleaved_times), this "
                        "many rounds; 0 = off")
    return p


def pin_threads(n: int) -> dict:
    """Limit this process — XLA, NumPy's BLAS and torch — to ``n`` cores; call it **before** JAX creates its CPU
    backend (before the first array or ``jax.devices()``).

    XLA has no working thread-count flag (``intra_op_parallelism_threads`` in ``XLA_FLAGS`` is not an XLA flag and
    is ignored); it sizes its thread pool from the process's CPU affinity, so the affinity mask is the one setting
    that reaches it (jax-ml/jax#1539). The mask is the first ``n`` cores of the current one, set on every thread
    the process already has (NumPy's OpenBLAS pool starts at ``import numpy``, before this call, and a thread keeps
    the mask it was created with); ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` are set for
    libraries loaded later, the BLAS/OpenMP pools already loaded are limited to ``n`` threads with ``threadpoolctl``
    (where installed), and torch, when imported, gets ``torch.set_num_threads(n)``. Returns ``{"requested",
    "affinity_cores", "blas_threads"}`` (the thread counts of the loaded BLAS/OpenMP pools; None without
    ``threadpoolctl``), to be recorded before any measurement.

    Raises:
      ValueError: ``n`` is not in ``[1, available cores]``.
      RuntimeError: JAX's CPU backend already exists (its pool would keep the old size).
    """
    import sys

    avail = sorted(os.sched_getaffinity(0))
    if not 1 <= n <= len(avail):
        raise ValueError(f"threads must be in [1, {len(avail)}] (the cores available to this process), got {n}")
    jax = sys.modules.get("jax")
    if jax is not None and _jax_backend_started(jax):
        raise RuntimeError("pin_threads must run before JAX creates its CPU backend (first array / jax.devices())")
    cores = set(avail[:n])
    os.sched_setaffinity(0, cores)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # pragma: no cover - no procfs
        tids = []
    for tid in tids:  # threads started before this call (e.g. NumPy's BLAS pool) keep their own mask otherwise
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # the thread has exited meanwhile
            pass
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    blas = None
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - optional: the pools then keep the size they started with
        pass
    else:
        threadpoolctl.threadpool_limits(n)  # the BLAS / OpenMP pools already loaded (NumPy's, SciPy's, torch's)
        blas = sorted({int(i["num_threads"]) for i in threadpoolctl.threadpool_info()})
    return {"requested": n, "affinity_cores": len(os.sched_getaffinity(0)), "blas_threads": blas}


def _jax_backend_started(jax) -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - private module moved: assume not started
        return False
    return bool(getattr(xla_bridge, "_backends", None))


def measured_parallelism(fn: Callable[[], object], repeats: int = 3) -> float:
    """Process CPU time over wall time while running ``fn`` ``repeats`` times: about the number of cores the work
    really used (≤ the affinity size). Recorded beside each side's thread setting so the JSON proves it."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.process_time() - c0) / max(time.perf_counter() - t0, 1e-9)


def check_load(tag: str = "before") -> list[float]:
    """The load average now; warns on stderr when the 1-minute load exceeds the cores available (a busy machine
    slows multi-threaded baselines far more than XLA, which inflated earlier ratios several-fold)."""
    import sys

    load = [round(x, 2) for x in os.getloadavg()]
    cores = len(os.sched_getaffinity(0))
    if load[0] > cores:
        print(f"warning: load average {load[0]} {tag} the run exceeds the {cores} cores: timings are not from an idle "
              "machine", file=sys.stderr)
    return load


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, float]]:
    """A/B(/C…) timing in one process: each round calls every function once, in a rotating order, so drift of the
    machine's state (frequency, other load) hits all sides alike. Returns ``{name: {"median_s", "min_s"}}``."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: {"median_s": float(np.median(v)), "min_s": float(np.min(v))} for k, v in times.items()}


def interleaved_ab(fns: dict[str, Callable[[], object]], rounds: int,
                   pairs: list[tuple[str, str]]) -> dict:
    """:func:`interleaved_times` of ``fns`` over ``rounds`` rounds, plus ``ab_ratio_<b>_over_<o>_median`` / ``_min``
    for each ``(b, o)`` of ``pairs`` (``b``'s time over ``o``'s: > 1 means ``o`` is faster). The functions must be
    compiled / warmed up already and block until their result is ready."""
    times = interleaved_times(fns, rounds)
    out: dict = {"rounds": rounds, "times": times}
    for b, o in pairs:
        for stat in ("median", "min"):
            out[f"ab_ratio_{b}_over_{o}_{stat}"] = times[b][f"{stat}_s"] / times[o][f"{stat}_s"]
    return out


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (which must block until its result is ready, e.g. end in
    ``jax.block_until_ready``)."""
    return float(np.median(call_times(fn, repeats)))


def call_times(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times of ``repeats`` successive calls of ``fn`` (seconds)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def first_and_median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """``(first call, median of the next repeats)``: compile (or warm-up) and steady state apart."""
    first = call_times(fn, 1)[0]
    return first, median_time(fn, repeats)


def machine_info() -> dict:
    """Cores, load average, jax platform/version (when jax is imported) — recorded in every benchmark JSON."""
    import sys

    info = {"cpu_count": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]}
    jax = sys.modules.get("jax")
    if jax is not None:
        dev = jax.devices()[0]
        info.update(platform=dev.platform, device_kind=dev.device_kind, jax_version=jax.__version__)
    return info


def rss_mb() -> float:
    """Current resident set size of this process (MB, from ``/proc/self/status``; NaN where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB, ``getrusage`` ``ru_maxrss``; Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_result(result: dict, out: str | pathlib.Path) -> None:
    """Write ``result`` (with ``machine_info()`` under ``"machine_at_write"``) as indented JSON to ``out`` (parents
    created) and echo it to stdout."""
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**result, "machine_at_write": machine_info()}, indent=2)
    out.write_text(text)
    print(text)
