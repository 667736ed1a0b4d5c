"""EigenShield image experiment: its code path on a tiny replica
of the Fashion-MNIST idx format (``--config.data_root``), with sizes overridden; the PGD attack stays inside its L∞
ball. (The paper preset — LLaVA — is tested in ``tests/experiments/test_eigenshield_paper_preset.py``.)"""

import gzip
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import __main__ as runner


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _replica(root, n_train=200, n_test=40):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = (rng.random((n, 28, 28)) * 60 + labels[:, None, None] * 19).clip(0, 255)  # class-dependent means
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.mark.slow
def test_image_experiment_runs_on_a_tiny_idx_replica(tmp_path):
    _replica(tmp_path)
    args = ["run", "eigenshield", "--preset", "cpu", "--config.seeds=(0,)",
            "--workdir", str(tmp_path / "w"), "--results",
            str(tmp_path / "r"), f"--config.data_root={tmp_path}", "--config.n_train=96", "--config.n_cal=96",
            "--config.n_test=32", "--config.epochs=1", "--config.channels=(4, 8)", "--config.features=8",
            "--config.batch_size=32", "--config.eval_batch_size=32", "--config.pgd_steps=1", "--config.eps=(8,)",
            "--config.n_bootstrap=2", "--config.show_progress=False"]
    assert runner.main(args) == 0
    row = json.loads((tmp_path / "r" / "cpu" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok"
    names = {m["name"] for m in row["metrics"]}
    assert {"eigenshield_clean_accuracy", "pca_asr_adaptive_eps8", "none_asr_nonadaptive_eps8"} <= names
    assert (tmp_path / "w" / "eigenshield" / "cpu" / "spectrum.png").exists()


def test_pgd_stays_in_the_ball_and_raises_the_loss():
    from flax import nnx

    from eigenkit.methods import eigenshield
    from experiments.eigenshield import train as T
    from experiments.eigenshield.configs import smoke

    c = smoke.get_config()
    model = T.Net(c, rngs=nnx.Rngs(0))
    model.eval()
    logits, embed, pgd = T.make_pipeline(model)
    x = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1))
    y = jnp.arange(8, dtype=jnp.int32) % 10
    st = eigenshield.fit(embed(jax.random.uniform(jax.random.key(2), (64, 28, 28, 1))), c.features,
                         key=jax.random.key(3), n_bootstrap=2)
    eps = 8 / 255
    adv = pgd(st, x, y, eps, jax.random.key(4), steps=3)
    assert float(jnp.max(jnp.abs(adv - x))) <= eps + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    ce = lambda z: float(jnp.mean(-jax.nn.log_softmax(logits(st, z))[jnp.arange(8), y]))  # noqa: E731
    assert ce(adv) > ce(x)
