"""The shared benchmark helper: the thread setting reaches XLA (measured CPU time / wall time of a jitted matmul in a
fresh process), the load check, and the interleaved A/B timer."""

import os
import subprocess
import sys
import textwrap

import pytest

from experiments.benchmarks import _common

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PROBE = textwrap.dedent("""
    import sys
    from experiments.benchmarks._common import measured_parallelism, pin_threads
    rep = pin_threads(int(sys.argv[1]))
    import jax, jax.numpy as jnp
    x = jnp.ones((1024, 1024), jnp.float32)
    f = jax.jit(lambda a: a @ a @ a)
    jax.block_until_ready(f(x))
    print(rep["affinity_cores"], measured_parallelism(lambda: jax.block_until_ready(f(x)), 20))
""")


def _probe(n: int) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    env["PYTHONPATH"] = ROOT
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", _PROBE, str(n)], capture_output=True, text=True, env=env,
                         timeout=300, check=True).stdout.split()
    return int(out[0]), float(out[1])


def test_one_thread_reaches_xla():
    """With pin_threads(1), XLA's matmuls use one core: CPU time ≈ wall time (it would be ≈ the core count
    unpinned on an idle machine)."""
    cores, par = _probe(1)
    assert cores == 1
    assert par < 1.15, par


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 cores")
def test_two_threads_are_used_when_asked():
    cores, par = _probe(2)
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
