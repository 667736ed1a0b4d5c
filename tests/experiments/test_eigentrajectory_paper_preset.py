"""The EigenTrajectory paper preset (five ETH/UCY leave-one-scene-out splits from a user folder in the Social-GAN
text layout, k = 6, 20 anchors, the official optimiser) runs its own code path on a tiny replica of that layout
(crowd-generator recordings written as ``frame<TAB>id<TAB>x<TAB>y`` files), the backbone shrunk by overrides; a
second call resumes from the checkpoints without training again."""

import json

import numpy as np
import pytest

from eigenkit import data
from eigenkit.data import MissingDataError
from experiments.__main__ import apply_overrides
from experiments.eigentrajectory import train
from experiments.eigentrajectory.configs import cpu, paper

TINY = dict(hidden=8, heads=2, layers=1, num_steps=2, eval_every=2, checkpoint_every=0, log_every=1,
            agent_slots=64, buckets=(8, 16), kmeans_n_init=1, seeds=(0,), show_progress=False)


def _write_split(path, windows_seed: int):
    """One recording per split file: every frame of a small crowd (the loader re-windows it)."""
    path.mkdir(parents=True)
    w = data.social_force_crowd("train", num_recordings=1, agents=5, frames=30, seed=windows_seed)
    # window 0 holds frames 0..19 of every agent, window j frames j..j+19: rebuild the 30 frames
    per = w.agents_per_window[0]
    frames = np.concatenate([w.trajectories[:per], w.trajectories[(w.num_windows - 1) * per:][:, -10:]], axis=1)
    lines = [f"{10 * t}\t{a}\t{frames[a, t, 0]:.4f}\t{frames[a, t, 1]:.4f}"
             for t in range(frames.shape[1]) for a in range(per)]
    (path / "crowd.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def replica(tmp_path):
    root = tmp_path / "ethucy"
    for i, scene in enumerate(("eth", "hotel")):
        for j, split in enumerate(("train", "val", "test")):
            _write_split(root / scene / split, 10 * i + j)
    return root


def test_paper_preset_is_the_papers_setting():
    c = paper.get_config()
    assert c.dataset == "ethucy" and tuple(c.scenes) == ("eth", "hotel", "univ", "zara1", "zara2")
    assert (c.k, c.num_samples, c.kmeans_n_init, c.obs_len, c.pred_len) == (6, 20, 10, 8, 12)
    assert (c.learning_rate, c.weight_decay, c.clip_grad, c.lr_gamma) == (1e-3, 1e-4, 10.0, 0.5)
    assert len(c.seeds) == 3 and c.checkpoint_every > 0
    assert c.expected_device and c.expected_memory and c.expected_runtime
    assert "--config.data_dir=" in paper.__doc__


def test_paper_preset_needs_the_users_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_ETHUCY", raising=False)
    with pytest.raises(MissingDataError, match="EIGENKIT_ETHUCY"):
        train.train_and_evaluate(paper.get_config(), str(tmp_path / "w"))


def test_auto_falls_back_to_the_synthetic_crowd(monkeypatch):
    monkeypatch.delenv("EIGENKIT_ETHUCY", raising=False)
    c = cpu.get_config()
    assert train.data_source(c) == ("synthetic", None) and train.scenes(c) == ("synthetic",)
    c.dataset = "nope"
    with pytest.raises(ValueError, match="config.dataset"):
        train.data_source(c)


def test_paper_code_path_on_a_tiny_replica(replica, tmp_path):
    c = paper.get_config()
    apply_overrides(c, [f"--config.data_dir={replica}", "--config.scenes=('eth','hotel')"])
    c.update(TINY)
    work = tmp_path / "w"
    result = train.train_and_evaluate(c, str(work))
    names = {m.name for m in result.metrics}
    assert names == {"et_ade", "et_fde", "euclidean_ade", "euclidean_fde"}
    assert all(np.isfinite(m.mean) and m.mean > 0 for m in result.metrics)
    assert result.metric("euclidean_ade").baseline and not result.metric("et_ade").baseline
    assert result.extras["source"] == "ETH/UCY"
    for name in ("futures", "descriptor", "table"):
        assert (work / result.artifacts[name].split("/")[-1]).exists()
    runs = json.loads((work / "ade_fde_table.json").read_text())["runs"]
    assert set(runs) == {"eth", "hotel"} and set(runs["eth"]) == {"et", "euclidean"}
    # resume: the checkpoints hold every step, nothing is trained again and the numbers are the same
    again = train.train_and_evaluate(c, str(work))
    for m in result.metrics:
        np.testing.assert_allclose(again.metric(m.name).values, m.values, rtol=1e-6)


def test_buckets_cover_every_window_once_per_epoch():
    w = data.social_force_crowd("train", num_recordings=2, agents=6, frames=30, seed=0)
    b = train.Buckets(w, (4, 8), agent_slots=32, n_dev=8)
    assert set(b.groups) == {8} and b.batch[8] == 8  # 6 agents -> the 8 bucket; 32 // 8 = 4 -> rounded up to 8
    plan = b.epoch_plan(0, 0)
    seen = np.sort(np.concatenate([idx for _, idx in plan]))
    np.testing.assert_array_equal(seen, np.arange(w.num_windows))
    assert len(plan) == b.batches_per_epoch
    batch = b.take(8, plan[-1][1])
    assert batch["traj"].shape == (8, 8, 20, 2) and batch["mask"].sum() == 6 * len(plan[-1][1])
    with pytest.raises(ValueError, match="largest bucket"):
        train.Buckets(w, (4,), agent_slots=32, n_dev=1)
