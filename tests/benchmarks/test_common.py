"""The shared benchmark helper: the thread setting reaches XLA and NumPy's BLAS (measured CPU time / wall time of a
jitted matmul in a fresh process), the load check, the interleaved A/B timer, and the standard options of every
benchmark script (``--threads``, ``--ab-rounds``), whose import must not start JAX's backend."""

import importlib
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from experiments.benchmarks import _common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = sorted(p.stem for p in (pathlib.Path(ROOT) / "experiments" / "benchmarks").glob("*.py")
                    if p.stem not in ("__init__", "_common"))

_PROBE = textwrap.dedent("""
    import importlib, os, sys
    import numpy as np
    from experiments.benchmarks._common import _jax_backend_started, measured_parallelism, pin_threads
    np.ones((256, 256)) @ np.ones((256, 256))  # NumPy's BLAS pool exists before pin_threads
    for name in filter(None, sys.argv[2].split(",")):  # importing a benchmark must not start JAX's backend
        importlib.import_module("experiments.benchmarks." + name)
        jax = sys.modules.get("jax")
        if jax is not None and _jax_backend_started(jax):
            sys.exit(f"importing experiments.benchmarks.{name} started JAX's backend")
    rep = pin_threads(int(sys.argv[1]))
    import jax, jax.numpy as jnp
    x = jnp.ones((1024, 1024), jnp.float32)
    f = jax.jit(lambda a: a @ a @ a)
    jax.block_until_ready(f(x))
    widest = max(len(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task"))
    print(rep["affinity_cores"], measured_parallelism(lambda: jax.block_until_ready(f(x)), 20), widest,
          ",".join(map(str, rep["blas_threads"] or [])))
""")


def _probe(n: int, imports: tuple[str, ...] = ()) -> tuple[int, float, int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    env["PYTHONPATH"] = ROOT
    env["JAX_PLATFORMS"] = "cpu"
    p = subprocess.run([sys.executable, "-c", _PROBE, str(n), ",".join(imports)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout.split()
    return int(out[0]), float(out[1]), int(out[2]), out[3] if len(out) > 3 else ""


def test_one_thread_reaches_xla():
    """With pin_threads(1), XLA's matmuls use one core: CPU time ≈ wall time (it would be ≈ the core count
    unpinned on an idle machine); every thread of the process (NumPy's BLAS pool, started before the call, too) is
    on one core and the BLAS pool is limited to 1 thread. The same process first imports every benchmark module,
    none of which may start JAX's backend (pin_threads would then refuse to run)."""
    cores, par, widest, blas = _probe(1, tuple(BENCHMARKS))
    assert cores == 1 and widest == 1
    assert blas in ("", "1"), blas  # "" without threadpoolctl
    assert par < 1.15, par


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 cores")
def test_two_threads_are_used_when_asked():
    cores, par, _, _ = _probe(2)
    assert cores == 2
    if os.getloadavg()[0] < 0.5:  # only meaningful on an idle machine
        assert par > 1.3, par


def test_pin_threads_rejects_bad_counts_and_a_started_backend():
    with pytest.raises(ValueError, match="threads must be in"):
        _common.pin_threads(0)
    import jax

    jax.devices()  # the test process's backend exists
    with pytest.raises(RuntimeError, match="before JAX creates its CPU backend"):
        _common.pin_threads(1)


def test_interleaved_times_and_load(capsys):
    calls = []
    out = _common.interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=4)
    assert set(out) == {"a", "b"} and calls.count("a") == calls.count("b") == 4
    assert calls[:4] == ["a", "b", "b", "a"]  # the order rotates each round
    assert all(v["min_s"] <= v["median_s"] for v in out.values())
    load = _common.check_load()
    assert len(load) == 3
    with pytest.raises(ValueError, match="rounds"):
        _common.interleaved_times({"a": lambda: None}, rounds=0)


def test_parser_standard_options():
    ap = _common.parser(None, out="x.json")
    args = ap.parse_args([])
    assert args.threads == 2 and args.ab_rounds == 0 and args.out == "x.json" and args.repeats == 5
    args = ap.parse_args(["--threads", "1", "--ab-rounds", "3"])
    assert args.threads == 1 and args.ab_rounds == 3
    assert _common.parser(None, out="y.json", repeats=3, threads=4).parse_args([]).threads == 4


def test_interleaved_ab_ratios():
    out = _common.interleaved_ab({"ours": lambda: None, "base": lambda: sum(range(20000))}, 3, [("base", "ours")])
    assert out["rounds"] == 3 and set(out["times"]) == {"ours", "base"}
    t = out["times"]
    assert out["ab_ratio_base_over_ours_median"] == t["base"]["median_s"] / t["ours"]["median_s"]
    assert out["ab_ratio_base_over_ours_min"] == t["base"]["min_s"] / t["ours"]["min_s"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_takes_the_standard_options(name):
    """Each script builds its command line in ``build_parser()`` (nothing runs) and accepts ``--threads 1
    --ab-rounds 3``; importing it leaves the environment alone (no XLA_FLAGS set behind the caller's back)."""
    flags = os.environ.get("XLA_FLAGS")
    mod = importlib.import_module(f"experiments.benchmarks.{name}")
    assert os.environ.get("XLA_FLAGS") == flags
    args = mod.build_parser().parse_args(["--threads", "1", "--ab-rounds", "3"])
    assert args.threads == 1 and args.ab_rounds == 3
    assert "--threads 1" in mod.__doc__, f"{name}: the docstring shows no --threads 1 control command"
