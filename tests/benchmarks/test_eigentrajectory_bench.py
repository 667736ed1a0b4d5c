"""The EigenTrajectory benchmark's pieces that decide what is compared, without running it (the full script compiles
two models on two meshes and fits the official constants: minutes): its command line, the stub backbone's weight
layout (ours vs the official hook's), the 8-device child's command and environment, and the batch selection."""

import os

import numpy as np
import pytest

from experiments.benchmarks import eigentrajectory as bench


def test_parser_defaults_and_options():
    args = bench.build_parser().parse_args([])
    assert args.scenes_per_batch == 64 and args.bucket == 16 and args.multi_devices == 8
    assert args.devices is None and args.official_src is None and args.data_dir is None and args.child_input is None
    assert args.out == "experiments/benchmarks/results/eigentrajectory.json"
    args = bench.build_parser().parse_args(["--devices", "8", "--official-src", "/x", "--data-dir", "/d",
                                            "--scenes-per-batch", "16", "--threads", "1"])
    assert args.devices == 8 and str(args.official_src) == "/x" and args.data_dir == "/d"
    assert args.scenes_per_batch == 16 and args.threads == 1


def test_stub_weight_layout_matches_the_official_hook():
    """Official hook: ``C_pred[i, n, s] = (W x_n)[i·S + s]`` (``reshape(k, S, N).permute(0, 2, 1)``); ours: the
    backbone output ``(n, S·k)`` read as ``residual[n, s, i]``. The permuted W gives the same residuals, and the
    inverse map takes our gradient back to the official layout."""
    k, s, n = 3, 5, 4
    w = bench.stub_weights(k, s)
    assert w.shape == (k * s, k + 2) and w.dtype == np.float32
    x = np.random.default_rng(1).normal(size=(n, k + 2)).astype(np.float32)
    official = (w @ x.T).reshape(k, s, n).transpose(2, 1, 0)  # (n, S, k) from C_pred (k, N, S)
    ours_w = bench.to_ours_layout(w, k, s)
    np.testing.assert_allclose((x @ ours_w.T).reshape(n, s, k), official, rtol=1e-6)
    np.testing.assert_array_equal(bench.to_official_layout(ours_w, k, s), w)
    stub = bench.make_linear_stub()(ours_w)
    np.testing.assert_allclose(np.asarray(stub(x, x[:, :2], np.ones(n, bool))), x @ ours_w.T, rtol=1e-5)


def test_child_command_sets_xla_flags_only_for_the_child():
    flags = os.environ.get("XLA_FLAGS")
    args = bench.build_parser().parse_args(["--threads", "1", "--repeats", "3", "--scenes-per-batch", "16"])
    cmd, env = bench.child_command(args, 8, "/tmp/in.pkl", "/tmp/out.json")
    assert os.environ.get("XLA_FLAGS") == flags
    assert "--xla_force_host_platform_device_count=8" in env["XLA_FLAGS"] and env["JAX_PLATFORMS"] == "cpu"
    for opt, val in (("--devices", "8"), ("--threads", "1"), ("--repeats", "3"), ("--scenes-per-batch", "16"),
                     ("--child-input", "/tmp/in.pkl"), ("--out", "/tmp/out.json")):
        assert cmd[cmd.index(opt) + 1] == val
    assert str(bench.REPO) in env["PYTHONPATH"].split(os.pathsep)


def test_select_batch_cycles_and_falls_back_to_the_fullest_bucket():
    groups = {8: (np.zeros((3, 8, 20, 2)), np.ones((3, 8), bool)),
              32: (np.ones((5, 32, 20, 2)), np.tile(np.arange(32) < 20, (5, 1)))}
    batch, info = bench.select_batch(groups, 8, 7)
    assert batch["traj"].shape == (7, 8, 20, 2) and batch["traj"].dtype == np.float32
    assert info["cycled"] and info["bucket"] == 8 and info["real_agents"] == 56 and info["bucket_note"] is None
    batch, info = bench.select_batch(groups, 16, 4)
    assert info["bucket"] == 32 and "empty" in info["bucket_note"] and not info["cycled"]
    assert info["real_agents"] == 80 and info["agent_slots"] == 128


def test_device_check_rejects_a_mismatch():
    rng = np.random.default_rng(0)
    one = {}
    for space in bench.SPACES:
        one[f"{space}_loss_grad_norm"] = np.array([2.0, 3.0])
        one[f"{space}_futures"] = rng.normal(size=(2, 4, 20, 12, 2)).astype(np.float32)
        one[f"{space}_params_after_step"] = rng.normal(size=10).astype(np.float32)
    assert bench.compare_devices(one, dict(one))["et"]["futures_max_abs_diff_m"] == 0.0
    bad = dict(one, et_futures=one["et_futures"] + 1e-2)
    with pytest.raises(SystemExit, match="correctness check failed"):
        bench.compare_devices(one, bad)
