"""The ETH/UCY loader (eigenkit.data.ethucy): windowing against a direct per-window loop (the Social-GAN semantics of
../shared/DATA.md §1), the window-count table of DATA.md, padding, and the errors for missing or malformed data.

The recordings are not shipped: tests that need them read ``$EIGENKIT_ETHUCY`` or the developers'
``../shared/data/ethucy`` and skip (saying so) when neither exists.
"""


import numpy as np
import pytest

from eigenkit import data

# DATA.md §1: (windows, agent-windows) per scene and split.
COUNTS = {
    "eth": {"train": (2785, 29809), "val": (660, 5349), "test": (70, 181)},
    "hotel": {"train": (2594, 29152), "val": (621, 5136), "test": (301, 1053)},
    "univ": {"train": (2076, 9231), "val": (530, 2708), "test": (947, 24334)},
    "zara1": {"train": (2322, 28010), "val": (605, 5118), "test": (602, 2253)},
    "zara2": {"train": (2112, 25507), "val": (501, 4173), "test": (921, 5833)},
}


def reference_windows(rows, seq_len, skip=1, min_agents=2):
    """DATA.md's loop: per start index, agents present in all seq_len unique frames, rounded to 4 decimals."""
    frames = np.unique(rows[:, 0])
    t = np.searchsorted(frames, rows[:, 0])
    out = []
    for start in range(0, len(frames) - seq_len + 1, skip):
        inside = (t >= start) & (t < start + seq_len)
        sub, ts = rows[inside], t[inside] - start
        tracks, ids = [], []
        for pid in np.unique(sub[:, 1]):
            own = sub[:, 1] == pid
            if own.sum() == seq_len and np.array_equal(np.sort(ts[own]), np.arange(seq_len)):
                tracks.append(np.round(sub[own][np.argsort(ts[own]), 2:4], 4))
                ids.append(pid)
        if len(tracks) >= min_agents:
            out.append((frames[start], np.array(ids), np.stack(tracks)))
    return out


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(repr(float(v)) for v in r) + "\n" for r in rows))


def _synthetic_rows(rng, n_frames=40, n_peds=9):
    """Frames 0, 10, 20, ... (one jump of 70), peds 1-2 always present, the others entering/leaving, ped 4 missing
    one middle frame."""
    frames = np.arange(n_frames) * 10.0
    frames[25:] += 60
    rows = []
    for p in range(n_peds):
        a = 0 if p < 2 else int(rng.integers(0, n_frames - 5))
        b = n_frames if p < 2 else int(rng.integers(a + 3, n_frames + 1))
        for f in frames[a:b]:
            if p == 3 and f == frames[a + 4]:
                continue  # a hole: ped 3 is absent from one frame
            rows.append((f, float(p + 1), rng.normal() * 5 + 1e-5 * rng.random(), rng.normal() * 5))
    rows = np.array(rows)
    return rows[rng.permutation(len(rows))]  # file order does not matter


@pytest.mark.parametrize("skip,seq_len,min_agents", [(1, 20, 2), (2, 8, 2), (1, 5, 3)])
def test_windows_equal_the_per_window_loop(tmp_path, skip, seq_len, min_agents):
    rng = np.random.default_rng(skip * 100 + seq_len)
    rows = _synthetic_rows(rng)
    traj, counts, start, ids = data.trajectory_windows(rows, seq_len, skip=skip, min_agents=min_agents)
    ref = reference_windows(rows, seq_len, skip, min_agents)
    assert len(ref) > 0 and len(counts) == len(ref)
    np.testing.assert_array_equal(counts, [len(r[1]) for r in ref])
    np.testing.assert_array_equal(start, [r[0] for r in ref])
    np.testing.assert_array_equal(ids, np.concatenate([r[1] for r in ref]))
    np.testing.assert_array_equal(traj, np.concatenate([r[2] for r in ref]))
    assert traj.dtype == np.float64 and traj.shape[1:] == (seq_len, 2)


def test_folder_loader_sorts_files_and_keeps_csr_offsets(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    a, b = _synthetic_rows(rng), _synthetic_rows(rng)
    _write(tmp_path / "s" / "train" / "b_rec.txt", b)
    _write(tmp_path / "s" / "train" / "a_rec.txt", a)
    (tmp_path / "s" / "train" / "notes.md").write_text("ignored")
    w = data.ethucy("s", "train", root=tmp_path, obs_len=3, pred_len=4)
    assert w.files == ("a_rec.txt", "b_rec.txt")
    ra, rb = reference_windows(a, 7), reference_windows(b, 7)
    assert w.num_windows == len(ra) + len(rb) == len(w) and w.scene_starts[0] == 0
    assert w.scene_starts[-1] == w.num_agents
    np.testing.assert_array_equal(w.file_index, [0] * len(ra) + [1] * len(rb))
    assert w.window_file[0] == "a_rec.txt" and w.window_file[-1] == "b_rec.txt"
    for i, r in enumerate(ra + rb):
        np.testing.assert_array_equal(w.window(i), r[2])
    np.testing.assert_array_equal(w.window(-1), (ra + rb)[-1][2])
    assert w.obs.shape == (w.num_agents, 3, 2) and w.pred.shape == (w.num_agents, 4, 2)
    np.testing.assert_array_equal(np.concatenate([w.obs, w.pred], axis=1), w.trajectories)
    # the environment variable is the default root
    monkeypatch.setenv("EIGENKIT_ETHUCY", str(tmp_path))
    np.testing.assert_array_equal(data.ethucy("s", "train", obs_len=3, pred_len=4).trajectories, w.trajectories)
    with pytest.raises(IndexError):
        w.window(w.num_windows)


def test_coordinates_are_rounded_to_four_decimals(tmp_path):
    rows = [(f, p, 1.00004999 + p + 0.1 * f, -2.123456) for f in range(20) for p in (1.0, 2.0)]
    traj, counts, _, _ = data.trajectory_windows(np.array(rows), 20)
    assert counts.tolist() == [2]
    np.testing.assert_array_equal(traj[0, :, 1], -2.1235)
    np.testing.assert_array_equal(traj[:, 0, 0], [2.0, 3.0])


def test_pad_windows_roundtrip():
    rng = np.random.default_rng(2)
    traj, counts, start, ids = data.trajectory_windows(_synthetic_rows(rng, n_peds=12), 6)
    w = data.TrajectoryWindows(traj, np.concatenate([[0], np.cumsum(counts)]), np.zeros(len(counts), np.int32),
                               start, ids, ("x.txt",), 2, 4)
    padded, mask = data.pad_windows(w)
    assert padded.shape == (w.num_windows, counts.max(), 6, 2) and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(1), counts)
    np.testing.assert_array_equal(padded[mask], w.trajectories)
    assert np.all(padded[~mask] == 0)
    p32, m32 = data.pad_windows(w, int(counts.max()) + 3, dtype=np.float32)
    assert p32.dtype == np.float32 and p32.shape[1] == counts.max() + 3 and m32[:, -3:].sum() == 0
    with pytest.raises(ValueError, match="smaller than the largest window"):
        data.pad_windows(w, int(counts.max()) - 1)


def test_missing_root_names_what_to_provide(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_ETHUCY", raising=False)
    with pytest.raises(data.MissingDataError, match="EIGENKIT_ETHUCY.*Social-GAN layout"):
        data.ethucy("eth", "test")
    monkeypatch.setenv("EIGENKIT_ETHUCY", str(tmp_path / "nope"))
    with pytest.raises(data.MissingDataError, match="EIGENKIT_ETHUCY=.*does not exist"):
        data.ethucy("eth", "test")


def test_unknown_scene_split_and_empty_folders(tmp_path):
    _write(tmp_path / "eth" / "test" / "r.txt", _synthetic_rows(np.random.default_rng(0)))
    with pytest.raises(data.MissingDataError, match="unknown scene 'zara9'.*scenes in .*: eth"):
        data.ethucy("zara9", "test", root=tmp_path)
    with pytest.raises(data.MissingDataError, match="unknown split 'dev'.*splits there: test"):
        data.ethucy("eth", "dev", root=tmp_path)
    (tmp_path / "eth" / "val").mkdir()
    with pytest.raises(data.MissingDataError, match="no .txt files"):
        data.ethucy("eth", "val", root=tmp_path)


def test_recording_shorter_than_a_window(tmp_path):
    rng = np.random.default_rng(3)
    _write(tmp_path / "s" / "t" / "r.txt", _synthetic_rows(rng, n_frames=15))
    traj, counts, _, _ = data.trajectory_windows(data.read_trajectory_file(tmp_path / "s" / "t" / "r.txt"), 20)
    assert traj.shape == (0, 20, 2) and counts.shape == (0,)
    with pytest.raises(ValueError, match=r"no window of 20 .* \(longest recording: 15 unique frames\)"):
        data.ethucy("s", "t", root=tmp_path)
    # a short recording next to a long one contributes nothing (documented skip)
    _write(tmp_path / "s" / "t" / "r2.txt", _synthetic_rows(rng, n_frames=60))
    w = data.ethucy("s", "t", root=tmp_path, obs_len=8, pred_len=12)
    assert set(w.window_file) == {"r2.txt"}


@pytest.mark.parametrize("text,match", [
    ("0\t1\t2.0\n", r"r.txt:1: expected 4 tab-separated fields .* got 3"),
    ("0\t1\t2.0\t3.0\n10\t1\t2.0\t3.0\t7\n", r"r.txt:2: expected 4 .* got 5"),
    ("0 1 2.0 3.0\n", "expected 4 tab-separated fields"),
    ("0\t1\tabc\t3.0\n", "fields must be numbers"),
    ("0\t1\tnan\t3.0\n", r"1 row\(s\) with NaN/Inf"),
    ("0\t1\t2.0\t3.0\n0\t1\t2.5\t3.0\n", r"1 duplicate \(frame, ped_id\)"),
    ("\n\n", "no rows"),
])
def test_malformed_files_raise_naming_the_file(tmp_path, text, match):
    path = tmp_path / "r.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        data.read_trajectory_file(path)


def test_bad_arguments(tmp_path):
    rows = _synthetic_rows(np.random.default_rng(4))
    with pytest.raises(ValueError, match="rows must have shape"):
        data.trajectory_windows(rows[:, :3], 20)
    with pytest.raises(ValueError, match="skip must be a positive int"):
        data.trajectory_windows(rows, 20, skip=0)
    with pytest.raises(ValueError, match=r"duplicate \(frame, ped_id\)"):
        data.trajectory_windows(np.concatenate([rows, rows[:1]]), 20)
    _write(tmp_path / "s" / "t" / "r.txt", rows)
    with pytest.raises(ValueError, match="obs_len must be a positive int"):
        data.ethucy("s", "t", root=tmp_path, obs_len=0)


@pytest.mark.needs_data
def test_eth_test_equals_the_reference_loop(ethucy_dir):
    w = data.ethucy("eth", "test", root=ethucy_dir)
    rows = data.read_trajectory_file(ethucy_dir / "eth" / "test" / "biwi_eth.txt")
    ref = reference_windows(rows, 20)
    assert w.files == ("biwi_eth.txt",)
    np.testing.assert_array_equal(w.agents_per_window, [len(r[1]) for r in ref])
    np.testing.assert_array_equal(w.trajectories, np.concatenate([r[2] for r in ref]))
    padded, mask = data.pad_windows(w)
    assert padded.shape == (70, w.agents_per_window.max(), 20, 2) and mask.sum() == 181


@pytest.mark.needs_data
@pytest.mark.parametrize("scene", ["eth", "hotel"])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_window_counts_eth_hotel(ethucy_dir, scene, split):
    w = data.ethucy(scene, split, root=ethucy_dir)
    assert (w.num_windows, w.num_agents) == COUNTS[scene][split]
    assert w.trajectories.shape == (w.num_agents, 20, 2) and w.trajectories.dtype == np.float64
    assert w.agents_per_window.min() >= 2


@pytest.mark.slow
@pytest.mark.needs_data
def test_window_counts_all_splits(ethucy_dir):
    def count(w):
        return w.num_windows, w.num_agents

    got = {s: {p: count(data.ethucy(s, p, root=ethucy_dir)) for p in data.ETHUCY_SPLITS} for s in data.ETHUCY_SCENES}
    assert got == COUNTS
