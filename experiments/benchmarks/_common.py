"""The one timing / machine-info / JSON helper of the benchmark scripts."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
from collections.abc import Callable

import numpy as np


def parser(doc: str | None, *, out: str, repeats: int = 5) -> argparse.ArgumentParser:
    """The command line every benchmark starts from: ``--out`` (JSON path) and ``--repeats``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=out, help=f"JSON output (default {out})")
    p.add_argument("--repeats", type=int, default=repeats, help="timed repetitions (the median is reported)")
    return p


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
