"""The synthetic social-force crowd (eigenkit.data.social_force_crowd): the ETH/UCY container and windowing, seeds and
splits, realistic speeds, a standing and a walking group, collision avoidance, and argument errors."""

import jax
import numpy as np
import pytest

from eigenkit import data
from eigenkit.data import TrajectoryWindows, pad_windows, social_force_crowd

DT = 0.4


@pytest.fixture(scope="module")
def train():
    return social_force_crowd("train")


def recordings(w, agents):
    """float64 ``(recordings, frames, agents, 2)``: each recording rebuilt from its skip-1 windows."""
    nrec = len(w.files)
    tr = w.trajectories.reshape(nrec, -1, agents, w.obs_len + w.pred_len, 2)
    return np.concatenate([tr[:, :, :, 0], tr[:, -1, :, 1:].transpose(0, 2, 1, 3)], axis=1)


def close_pair_fraction(full, dist=0.3):
    d = np.linalg.norm(full[:, :, :, None] - full[:, :, None], axis=-1)
    i, j = np.triu_indices(full.shape[2], 1)
    return float((d[:, :, i, j] < dist).mean())


def test_container_shapes_dtypes_and_csr(train):
    w = train
    assert isinstance(w, TrajectoryWindows) and data.social_force_crowd is social_force_crowd
    per_rec = 120 - 20 + 1
    assert w.num_windows == 4 * per_rec and w.num_agents == 4 * per_rec * 24
    assert w.trajectories.shape == (w.num_agents, 20, 2) and w.trajectories.dtype == np.float64
    assert w.obs.shape == (w.num_agents, 8, 2) and w.pred.shape == (w.num_agents, 12, 2)
    assert w.scene_starts.dtype == np.int64 and w.scene_starts[0] == 0 and w.scene_starts[-1] == w.num_agents
    assert (w.agents_per_window == 24).all()
    assert w.file_index.dtype == np.int32 and w.file_index.shape == (w.num_windows,)
    np.testing.assert_array_equal(w.file_index, np.repeat(np.arange(4), per_rec))
    assert w.start_frame.dtype == np.float64
    np.testing.assert_array_equal(w.start_frame, np.tile(10.0 * np.arange(per_rec), 4))
    assert w.ped_ids.dtype == np.float64 and w.ped_ids.shape == (w.num_agents,)
    np.testing.assert_array_equal(w.ped_ids, np.tile(np.arange(24.0), 4 * per_rec))
    assert w.files == tuple(f"social_force_train_{i}.txt" for i in range(4))
    assert w.window_file[0] == "social_force_train_0.txt" and w.window_file[-1] == "social_force_train_3.txt"
    assert np.isfinite(w.trajectories).all()
    np.testing.assert_array_equal(w.trajectories, np.around(w.trajectories, 4))  # 4 decimals, as the real loader
    # Skip-1 windows of one recording overlap: window w + 1 is window w shifted by one frame.
    np.testing.assert_array_equal(w.window(1)[:, :-1], w.window(0)[:, 1:])
    np.testing.assert_array_equal(w.window(per_rec)[:, 0], recordings(w, 24)[1, 0])
    assert (w.trajectories > -1).all() and (w.trajectories < 13).all()  # inside the 12 m square (up to pushes)


def test_window_count_follows_the_arguments():
    w = social_force_crowd("val", num_recordings=2, agents=5, frames=30, obs_len=4, pred_len=6)
    assert w.num_windows == 2 * (30 - 10 + 1) and w.num_agents == w.num_windows * 5
    assert w.trajectories.shape == (w.num_agents, 10, 2) and (w.obs_len, w.pred_len) == (4, 6)
    assert w.files == ("social_force_val_0.txt", "social_force_val_1.txt")
    w = social_force_crowd("test", num_recordings=1, agents=3, frames=20)
    assert w.num_windows == 1 and w.num_agents == 3


def test_deterministic_and_splits_differ(train):
    np.testing.assert_array_equal(social_force_crowd("train").trajectories, train.trajectories)
    for other in (social_force_crowd("val"), social_force_crowd("test"), social_force_crowd("train", seed=1)):
        assert other.trajectories.shape == train.trajectories.shape
        assert np.abs(other.trajectories - train.trajectories).mean() > 1.0
    val, test = social_force_crowd("val").trajectories, social_force_crowd("test").trajectories
    assert np.abs(val - test).mean() > 1.0


def test_speeds_realistic_with_static_and_moving_groups(train):
    full = recordings(train, 24)  # (4, 120, 24, 2)
    speed = np.linalg.norm(np.diff(full, axis=1), axis=-1) / DT  # per-step speed (4, 119, 24)
    per_agent = np.median(speed, axis=1)
    moving = per_agent > 0.5
    assert 0.7 < moving.mean() < 0.95  # about 15 % stand
    assert 0.8 < np.median(speed.transpose(0, 2, 1)[moving]) < 1.8
    # Over a window, standing agents barely move (net displacement / duration) and walkers do.
    tr = train.trajectories
    window_speed = np.linalg.norm(tr[:, -1] - tr[:, 0], axis=-1) / (DT * 19)
    assert (window_speed < 0.1).mean() > 0.1
    assert (window_speed > 0.5).mean() > 0.5
    # EigenTrajectory's split (two-step speed at the end of the observation against static_dist ~0.35 m/step).
    step2 = np.linalg.norm(tr[:, 7] - tr[:, 5], axis=-1) / 2
    assert 0.05 < (step2 <= 0.35).mean() < 0.5


def test_repulsion_keeps_agents_apart(train):
    with_rep = close_pair_fraction(recordings(train, 24))
    without = close_pair_fraction(recordings(social_force_crowd("train", repulsion=0.0), 24))
    assert with_rep < 0.01
    assert with_rep < without / 3


def test_float32_when_x64_is_off(train):
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"):
        w = social_force_crowd("train")
    assert w.trajectories.dtype == np.float64 and w.trajectories.shape == train.trajectories.shape
    assert np.isfinite(w.trajectories).all()
    np.testing.assert_array_equal(w.trajectories[:24, 0], np.around(w.trajectories[:24, 0], 4))
    # Same host draws: the first frame agrees up to float32 rounding of one short burn-in.
    np.testing.assert_allclose(w.trajectories[:24, 0], train.trajectories[:24, 0], atol=1e-2)


def test_pad_windows():
    w = social_force_crowd("test", num_recordings=2, agents=6, frames=24)
    traj, mask = pad_windows(w)
    assert traj.shape == (w.num_windows, 6, 20, 2) and mask.shape == (w.num_windows, 6) and mask.all()
    np.testing.assert_array_equal(traj.reshape(-1, 20, 2), w.trajectories)
    traj, mask = pad_windows(w, 8, dtype=np.float32)
    assert traj.dtype == np.float32 and mask.sum() == w.num_agents and not mask[:, 6:].any()


@pytest.mark.parametrize("kwargs, name", [
    ({"split": "dev"}, "split"),
    ({"num_recordings": 0}, "num_recordings"),
    ({"agents": 0}, "agents"),
    ({"agents": True}, "agents"),
    ({"frames": 19}, "frames"),
    ({"frames": 2.5}, "frames"),
    ({"obs_len": 0}, "obs_len"),
    ({"pred_len": -1}, "pred_len"),
    ({"substeps": 0}, "substeps"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"dt": 0.0}, "dt"),
    ({"dt": -0.4}, "dt"),
    ({"dt": float("nan")}, "dt"),
    ({"dt": "0.4"}, "dt"),
    ({"area": 0}, "area"),
    ({"repulsion": -1.0}, "repulsion"),
    ({"min_agents": 0}, "min_agents"),
    ({"agents": 3, "min_agents": 4}, "min_agents"),
])
def test_bad_arguments(kwargs, name):
    kwargs = {"split": "train", **kwargs}
    with pytest.raises(ValueError, match=name):
        social_force_crowd(kwargs.pop("split"), **kwargs)


def test_frames_error_says_the_needed_length():
    with pytest.raises(ValueError, match=r"frames must be >= obs_len \+ pred_len = 20, got 19"):
        social_force_crowd(frames=19)
    social_force_crowd(frames=20, num_recordings=1, agents=2)  # exactly one window is fine
