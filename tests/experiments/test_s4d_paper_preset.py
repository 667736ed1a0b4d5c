"""The S4D paper presets' own code paths (sequential CIFAR-10 from the python pickles; LRA ListOps from the TSV files
and from the generator) for 2 training steps, the model shrunk by overrides (d_model 8, 1 layer, batch 8: the tests'
8 fake devices); every other key stays as the preset sets it. Also: the preset keys equal the official recipes
(``configs/experiment/lra/s4-cifar.yaml`` and ``s4-listops.yaml`` of state-spaces/s4 @ e757cef57d89)."""

import math
import pickle

import jax
import numpy as np
import pytest
from flax import nnx

from eigenkit import data
from eigenkit.data import MissingDataError
from eigenkit.methods.s4d import s4d_param_labels
from eigenkit.train import param_path
from experiments import _registry
from experiments.s4d import listops as listops_study
from experiments.s4d import train
from experiments.s4d.configs import paper

TINY = dict(d_model=8, n_layers=1, batch_size=8, eval_batch_size=8, num_steps=2, warmup_steps=1, log_every=1,
            show_progress=False)


def _num_params(config, d_input: int, *, tokens: bool) -> int:
    """Parameter count of the official S4 layout (bidirectional, n_ssm = 1, one channel, GLU output, BatchNorm):
    encoder, then per layer dt (H), A real / imag (N/2 each), B (N/2 complex), C (2 directions x H x N/2 complex),
    D (H), Linear(H, 2H); norm scale + bias (2H); decoder Linear(H, 10)."""
    h, n2 = config.d_model, config.d_state // 2
    encoder = d_input * h if tokens else d_input * h + h
    layer = h + 2 * n2 + 2 * n2 + 2 * h * n2 * 2 + h + (h * 2 * h + 2 * h)
    return encoder + config.n_layers * (layer + 2 * h) + h * 10 + 10


def _check_result(result, config, d_input: int, *, tokens: bool, n: dict):
    for name in ("test_accuracy", "val_accuracy", "logreg_test_accuracy"):
        (v,) = result.metric(name).values
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (name, v)
    assert result.metric("logreg_test_accuracy").baseline
    assert result.extras["num_params"] == _num_params(config, d_input, tokens=tokens)
    assert {k: result.extras[f"n_{k}"] for k in n} == n


# -- the presets are the official recipes ---------------------------------------------------------------------------
def test_cifar_paper_preset_is_the_official_lra_image_recipe():
    c = paper.get_config()
    assert (c.dataset, c.grayscale, c.val_split, c.val_seed) == ("cifar10", True, 0.1, 42)  # dataset/cifar.yaml
    assert (c.d_model, c.n_layers, c.d_state, c.dropout, c.prenorm, c.norm) == (512, 6, 64, 0.1, False, "batch")
    assert (c.bidirectional, c.n_ssm, c.dt_min, c.dt_max, c.dt_transform) == (True, 1, 1e-3, 1e-1, "softplus")
    assert (c.learning_rate, c.weight_decay, c.batch_size) == (0.01, 0.05, 50)
    # scalar layer lr 0.001: dt, A, B and C on it (C keeps the weight decay); no decay on backbone bias / norms
    assert (c.ssm_lr, c.c_with_ssm_lr, c.dt_with_ssm_lr, c.decay_bias_and_norm) == (1e-3, True, True, False)
    assert (c.num_steps, c.warmup_steps) == (180_000, 18_000)  # scheduler: 200 epochs of 45,000 / 50
    assert c.num_steps == 200 * (45_000 // c.batch_size) and c.eval_every == 45_000 // c.batch_size
    assert (c.init, c.discretization) == ("lin", "zoh")  # S4D-Lin: mode=diag init=diag-lin
    assert c.expected_device and c.expected_memory and c.expected_runtime
    assert "python -m experiments run s4d --preset paper --config.data_dir=" in paper.__doc__


def test_listops_paper_preset_is_the_official_lra_listops_recipe():
    c = listops_study.get_config("paper")
    assert (c.dataset, c.l_max, c.data_dir) == ("listops", 2048, "")  # dataset/listops.yaml
    assert (c.d_model, c.n_layers, c.d_state, c.dropout, c.prenorm, c.norm) == (256, 6, 4, 0.0, False, "batch")
    assert (c.bidirectional, c.n_ssm, c.dt_min, c.dt_max, c.dt_transform) == (True, 1, 1e-3, 1e-1, "softplus")
    assert (c.learning_rate, c.weight_decay, c.batch_size) == (0.01, 0.05, 32)
    # dict layer lr {dt: null, A: 0.001, B: 0.001}: dt on the global lr (wd 0), C an ordinary parameter
    assert (c.ssm_lr, c.c_with_ssm_lr, c.dt_with_ssm_lr, c.decay_bias_and_norm) == (1e-3, False, False, False)
    assert (c.num_steps, c.warmup_steps) == (120_000, 12_000) and c.num_steps == 40 * (96_000 // c.batch_size)
    # the offline generator at LRA's defaults
    assert (c.listops_max_depth, c.listops_max_args, c.listops_min_length, c.listops_max_length) == (10, 10, 500, 2000)
    assert c.expected_device and c.expected_memory and c.expected_runtime
    assert "python -m experiments run s4d.listops --preset paper --config.data_dir=" in listops_study.__doc__
    assert "s4d.listops" in _registry.list_experiments()
    assert _registry.list_presets("s4d.listops") == ["smoke", "paper"]


@pytest.mark.parametrize("preset", ["cifar", "listops"])
def test_paper_presets_build_the_official_optimizer_groups(preset):
    c = paper.get_config() if preset == "cifar" else listops_study.get_config("paper")
    c.update(TINY)
    model = train.make_model(c, 1) if preset == "cifar" else train.make_model(c, 18, tokens=True)
    labels = s4d_param_labels(nnx.state(model, nnx.Param), c_with_ssm_lr=c.c_with_ssm_lr,
                              dt_with_ssm_lr=c.dt_with_ssm_lr, decay_bias_and_norm=c.decay_bias_and_norm)
    got = {param_path(p): v for p, v in jax.tree_util.tree_flatten_with_path(labels)[0]}
    want_dt, want_c = ("ssm", "ssm_c") if preset == "cifar" else ("ssm_dt", "default")
    assert (got["layers/0/ssm/log_dt"], got["layers/0/ssm/C"], got["layers/0/ssm/B"]) == (want_dt, want_c, "ssm")
    assert got["norms/0/scale"] == got["layers/0/output_linear/bias"] == "no_decay"
    assert got["decoder/bias"] == got["layers/0/ssm/D"] == "default"
    train.make_optimizer(c, model)  # every label has its transform


def test_cifar_sequences_are_the_official_grey_and_rgb_pixels():
    """Grey: PIL's ``convert("L")`` (what torchvision's Grayscale does to the PIL images of its CIFAR10), then
    Normalize(122.6 / 255, 61 / 255); RGB: per-channel Normalize; both in raster order."""
    image_mod = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    images[0] = 255  # extremes of the fixed-point rounding
    images[1, :16] = 0
    grey = np.stack([np.asarray(image_mod.fromarray(im).convert("L")) for im in images])
    want = (grey.reshape(3, 1024, 1) / 255.0 - 122.6 / 255.0) / (61.0 / 255.0)
    got = train.cifar_sequences(images, grayscale=True)
    assert got.shape == (3, 1024, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    rgb = train.cifar_sequences(images, grayscale=False)
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.247, 0.243, 0.261])
    np.testing.assert_allclose(rgb[1, 32 * 5 + 7], (images[1, 5, 7] / 255.0 - mean) / std, rtol=1e-6, atol=1e-6)
    assert rgb.shape == (3, 1024, 3)


# -- end to end on replicas -----------------------------------------------------------------------------------------
def _cifar_replica(root, n_per_batch=8, n_test=16, seed=0):
    """The cifar-10-batches-py layout written by hand (dicts of bytes keys, uint8 (n, 3072) rows, protocol 2)."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"img.png"] * n}
        with open(root / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]}, f, protocol=2)
    return root


def test_cifar_paper_preset_runs_on_a_pickle_replica(tmp_path):
    c = paper.get_config()
    with pytest.raises(MissingDataError, match="cifar-10-batches-py"):
        train.load_cifar10(c)
    c.update(dict(TINY, data_dir=str(_cifar_replica(tmp_path / "cifar-10-batches-py"))))
    result = train.train_and_evaluate(c, str(tmp_path / "work"))
    _check_result(result, c, 1, tokens=False, n={"train": 36, "val": 4, "test": 16})  # 10 % of 40 held out
    assert result.extras["seq_len"] == 1024


def _listops_tsv(root, seed=0):
    root.mkdir()
    for i, (split, n) in enumerate((("train", 24), ("val", 8), ("test", 8))):
        src, y = data.listops_generate(n, seed=seed + i, max_depth=4, min_length=10, max_length=60)
        data.listops_write_tsv(root / f"basic_{split}.tsv", src, y)
    return root


def test_listops_paper_preset_runs_on_tsv_files(tmp_path):
    c = listops_study.get_config("paper")
    with pytest.raises(MissingDataError, match="listops-1000"):
        train.load_listops(c)
    c.update(dict(TINY, data_dir=str(_listops_tsv(tmp_path / "listops-1000"))))
    result = listops_study.train_and_evaluate(c, str(tmp_path / "work"))
    _check_result(result, c, 18, tokens=True, n={"train": 24, "val": 8, "test": 8})
    assert result.extras["seq_len"] == 2048


def test_listops_paper_preset_runs_on_generated_expressions(tmp_path):
    c = listops_study.get_config("paper")
    c.update(dict(TINY, listops_generate_n=40))  # data_dir "" -> LRA's generator at its default lengths
    result = listops_study.train_and_evaluate(c, str(tmp_path / "work"))
    _check_result(result, c, 18, tokens=True, n={"train": 32, "val": 4, "test": 4})
    splits = train.load_listops(c)
    lengths = np.concatenate([splits[s]["lengths"] for s in ("train", "val", "test")])
    assert (lengths > 500).all() and (lengths <= 2000).all()  # 500 < tokens < 2000, plus <eos>
