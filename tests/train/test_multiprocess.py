"""Multi-process training for real: 2 JAX processes x 4 CPU devices on loopback (coordinator on 127.0.0.1, gloo
collectives), launched as subprocesses the way a user starts one process per host (tests/train/mp_worker.py).

* 2 processes x 4 devices train to the same parameters as 1 process x 8 devices;
* a checkpoint written by the 2-process run resumes in a 1-process run, and the other way round, to the parameters
  of an uninterrupted run;
* a process killed mid-run makes the other exit with an error within the timeout (no hang), and rerunning the same
  command resumes from the last checkpoint.
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # ~7 launches of 1-2 fresh JAX processes

WORKER = pathlib.Path(__file__).with_name("mp_worker.py")
REPO = WORKER.parents[2]
TIMEOUT_S = 150


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(workdir, num_steps, nproc, die_at=None, pipeline=""):
    """Run the worker in ``nproc`` processes; returns ``[(returncode, output, seconds)]`` per process."""
    port = _port()
    procs = []
    for pid in range(nproc):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "EIGENKIT_"))}
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={8 // nproc}",
                   PYTHONPATH=str(REPO), MP_PIPELINE=pipeline)
        if nproc > 1:
            env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(nproc),
                       JAX_PROCESS_ID=str(pid), EIGENKIT_HEARTBEAT_TIMEOUT_S="10")
        args = [sys.executable, str(WORKER), str(workdir), str(num_steps)] + ([str(die_at)] if die_at else [])
        procs.append((subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True), time.monotonic()))
    out = []
    for p, t0 in procs:
        try:
            text, _ = p.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for q, _ in procs:
                q.kill()
            pytest.fail(f"a worker hung for more than {TIMEOUT_S} s")
        out.append((p.returncode, text, time.monotonic() - t0))
    return out


def _ok(runs):
    for rc, text, _ in runs:
        assert rc == 0, text[-3000:]
    return runs


def _params(workdir):
    with np.load(workdir / "params.npz") as f:
        return {k: f[k] for k in f.files}


def _close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=2e-6, err_msg=k)


def test_two_processes_checkpoints_across_process_counts_and_a_killed_process(tmp_path):
    full = tmp_path / "full"  # 1 process x 8 devices, 9 steps uninterrupted
    _ok(_launch(full, 9, 1))
    ref9 = _params(full)

    one = tmp_path / "one"  # 1 x 8 to step 6 ...
    _ok(_launch(one, 6, 1))
    one6 = _params(one)
    two = tmp_path / "two"  # ... and 2 x 4 to step 6: the same parameters
    runs = _ok(_launch(two, 6, 2))
    assert all("on 8 devices" in text for _, text, _ in runs)
    assert {f"process {i}/2 done at step 6" in runs[i][1] for i in range(2)} == {True}
    _close(_params(two), one6)
    assert max(np.abs(one6[k] - ref9[k]).max() for k in ref9) > 1e-4  # parameters did move between 6 and 9
    killed_ref = _params(two)

    crash = tmp_path / "crash"  # a copy of the 2-process run at step 3, for the kill test below
    shutil.copytree(two, crash)
    shutil.rmtree(crash / "checkpoints" / "6")

    # 2-process checkpoint -> 1 process, and 1-process checkpoint -> 2 processes
    runs = _ok(_launch(two, 9, 1))
    assert "resumed from" in runs[0][1] and "at step 6" in runs[0][1]
    _close(_params(two), ref9)
    runs = _ok(_launch(one, 9, 2))
    assert "at step 6" in runs[0][1]
    _close(_params(one), ref9)

    # process 1 dies (SIGKILL) at step 5: process 0 must fail, not hang; the same command then resumes from step 3
    (crash / "params.npz").unlink()
    runs = _launch(crash, 6, 2, die_at=5)
    assert runs[1][0] == -9, runs[1][1][-2000:]
    rc0, text0, secs0 = runs[0]
    assert rc0 != 0 and secs0 < TIMEOUT_S, text0[-2000:]
    assert "another task died" in text0 and "stopped sending heartbeats" in text0, text0[-2000:]
    assert not (crash / "params.npz").exists()
    runs = _ok(_launch(crash, 6, 2))
    assert "at step 3" in runs[0][1]
    _close(_params(crash), killed_ref)


def test_grain_resumes_mid_epoch_in_two_processes(tmp_path):
    """2 processes reading their Grain shards: a run stopped at step 7 (mid-epoch: 25 batches per epoch) and resumed
    consumes exactly the batches of the uninterrupted run, in each process, and ends at its parameters."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    _ok(_launch(full, 9, 2, pipeline="grain"))
    _ok(_launch(cut, 7, 2, pipeline="grain"))
    runs = _ok(_launch(cut, 9, 2, pipeline="grain"))
    assert "at step 7" in runs[0][1]
    for p in range(2):
        seen_full = (full / f"seen_{p}.jsonl").read_text().splitlines()
        assert len(seen_full) == 9 and (cut / f"seen_{p}.jsonl").read_text().splitlines() == seen_full
    shards = [set(sum((json.loads(line) for line in (full / f"seen_{p}.jsonl").read_text().splitlines()), []))
              for p in range(2)]
    assert not shards[0] & shards[1]  # the processes read disjoint shards
    _close(_params(cut), _params(full))
