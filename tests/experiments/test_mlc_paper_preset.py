"""The MLC paper preset (CIFAR ResNet-18, d = 128, two views, CIFAR python pickles from a user path) runs its own code
path on tiny replicas of the CIFAR-10 and CIFAR-100 (as CIFAR-20) pickle directories, the network shrunk by
overrides; every other key stays as the preset sets it."""

import numpy as np
import pytest

from eigenkit import data
from eigenkit.data import MissingDataError
from experiments.__main__ import apply_overrides
from experiments.mlc import train
from experiments.mlc.configs import paper

TINY = dict(stage_sizes=(1, 1, 1, 1), width=4, hidden=16, z_dim=8, batch_size=16, eval_batch_size=16, tcr_steps=2,
            tcr_warmup_steps=1, mlc_steps=2, n_eval=48, n_train=64, log_every=1, checkpoint_every=1,
            show_progress=False)


def _images(rng, n):
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _cifar10(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data.cifar10_write_batch(root / name, _images(rng, 20), np.arange(20) % 10)
    return root


def _cifar100(root):
    root.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 80), ("test", 60)):
        fine = np.arange(n) % 100
        data.cifar100_write(root / name, _images(rng, n), fine, fine % 20)
    return root


def test_paper_preset_is_the_papers_setting():
    c = paper.get_config()
    assert (c.dataset, c.backbone, tuple(c.stage_sizes), c.width, c.z_dim, c.num_views) == \
        ("cifar10", "resnet18", (2, 2, 2, 2), 64, 128, 2)
    assert (c.eps_sq, c.eta, c.sinkhorn_iters, c.batch_size, c.hidden) == (0.1, 0.175, 5, 1024, 4096)
    assert c.n_train == 0 and c.n_eval == 0 and c.checkpoint_every > 0
    assert c.expected_device and c.expected_memory and c.expected_runtime
    assert "--config.data_dir=DIR" in paper.__doc__


def test_paper_preset_needs_the_users_files(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_CIFAR10", raising=False)
    with pytest.raises(MissingDataError, match="config.data_dir"):
        train.train_and_evaluate(paper.get_config(), str(tmp_path / "w"))


@pytest.mark.parametrize("dataset", ["cifar10", "cifar20"])
def test_paper_code_path_on_a_tiny_replica(dataset, tmp_path):
    root = _cifar10(tmp_path / "cifar-10-batches-py") if dataset == "cifar10" else \
        _cifar100(tmp_path / "cifar-100-python")
    c = paper.get_config()
    apply_overrides(c, [f"--config.data_dir={root}", f"--config.dataset={dataset}"])
    c.update(TINY)
    result = train.train_and_evaluate(c, str(tmp_path / "w"))
    acc = result.metric("mlc_acc")
    assert 0 < acc.mean <= 1 and result.metric("kmeans_tcr_acc").baseline
    assert (tmp_path / "w" / "tcr_s0").is_dir() and (tmp_path / "w" / "mlc_s0").is_dir()
    assert result.extras["diagnostics"]["gamma_row_sum_err"]["mean"] < 1e-4
    k = 10 if dataset == "cifar10" else 20
    assert result.extras["num_clusters"] == k
