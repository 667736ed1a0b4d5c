"""The GCR ImageNet preset end to end, through the runner, on a generated ImageFolder replica: the preset's own code
path (ResNet-D, the JPEG pipeline, SGD + RSGD, top-1 / top-5, the linear-transfer probe) with only sizes shrunk, and the
runner announcing the device and memory a paper-scale run needs before it starts."""

import json

import numpy as np
import pytest
from PIL import Image

from experiments import __main__ as runner
from experiments.gcr.configs import paper

CLASSES = ("n01", "n02", "n03")


def _folder(root, per_class, seed):
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(CLASSES):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(30, 50)), int(rng.integers(30, 50))
            base = np.zeros((h, w, 3), np.float64)
            base[..., ci] = 200.0  # a class-coloured image, so the labels are learnable
            img = np.clip(base + rng.normal(0.0, 25.0, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i}.JPEG", quality=90)


# only sizes change; everything else is the paper preset (recipe, schedule, heads, dtype policy aside)
TINY = ["--config.stage_sizes=(1,1,1,1)", "--config.width=4", "--config.stem_width=4", "--config.image_size=32",
        "--config.resize_size=36", "--config.batch_size=8", "--config.eval_batch_size=8", "--config.bn_group_size=4",
        "--config.compute_dtype=float32", "--config.num_workers=2", "--config.grain_workers=0", "--config.epochs=2",
        "--config.eval_every_epochs=1.0", "--config.log_every=1", "--config.checkpoint_every=2",
        "--config.show_progress=False", "--config.probe_max_iter=200"]


@pytest.mark.slow  # two tiny ResNet-D trainings, compiled: ~15 s idle
def test_paper_preset_end_to_end_on_a_replica(tmp_path, capsys):
    img, tr = tmp_path / "imagenet", tmp_path / "transfer"
    _folder(img / "train", 8, 0)
    _folder(img / "val", 3, 1)
    _folder(tr / "train", 4, 2)
    _folder(tr / "test", 2, 3)
    args = ["run", "gcr", "--preset", "paper", "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "r"),
            f"--config.data_dir={img}", f"--config.transfer_dir={tr}", "--config.transfer_name=replica", *TINY]
    assert runner.main(args) == 0
    out = capsys.readouterr().out
    cfg = paper.get_config()
    assert f"device: {cfg.expected_device}" in out and f"memory: {cfg.expected_memory}" in out
    assert out.index("device:") < out.index("ImageNet pipeline:")  # announced before anything runs
    assert "24 train / 9 val images, 3 classes" in out
    row = json.loads((tmp_path / "r" / "paper" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok" and row["name"] == "gcr"
    metrics = {m["name"]: m for m in row["metrics"]}
    expected = {f"{h}_{t}" for h in ("softmax", "gcr_k8") for t in ("top1", "top5")}
    expected |= {"transfer_replica_softmax_probe_accuracy", "transfer_replica_gcr_k8_probe_accuracy"}
    assert set(metrics) == expected
    for name, m in metrics.items():
        assert 0.0 <= m["mean"] <= 1.0 and m["seeds"] == [0], name
        assert m["baseline"] == ("softmax" in name), name
        # top-5 of 3 classes is every class: the metric must say so
        if name.endswith("top5"):
            assert m["mean"] == 1.0
    # 24 images / batch 8 = 3 steps per epoch, 2 epochs: each head checkpoints its last step
    for head in ("softmax", "gcr_k8"):
        assert (tmp_path / "w" / "gcr" / "paper" / f"{head}_s0").is_dir()
    res = json.loads((tmp_path / "w" / "gcr" / "paper" / "gcr_imagenet_results.json").read_text())
    assert res["n_train"] == 24 and res["n_val"] == 9 and res["num_classes"] == 3
