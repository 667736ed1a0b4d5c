"""The SPE paper preset's own code path (ZINC from the user's copy, official vocabulary and recipe) for 2 training
steps on a ZINC-format replica, the model shrunk by overrides (batch 8: the tests' 8 fake devices; every method of
the preset in the slow test)."""

import math

import numpy as np
import pytest
import zinc_replica as rep

from eigenkit.data import MissingDataError
from experiments.spe import train
from experiments.spe.configs import cpu, paper


@pytest.fixture
def zinc_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EIGENKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EIGENKIT_ZINC", raising=False)
    rng = np.random.default_rng(1)
    for split, n, index in (("train", 18, list(range(17, 1, -1))), ("val", 5, [0, 2, 4]), ("test", 4, [3, 1])):
        rep.write_split(tmp_path / "zinc" / "raw", split, rep.random_molecules(n, rng), index)
    return tmp_path / "zinc"


def test_paper_preset_is_the_official_zinc_recipe():
    c = paper.get_config()
    assert (c.dataset, c.zinc_subset, c.n_node_types, c.n_edge_types) == ("zinc", True, 28, 3)
    assert (c.hidden, c.n_layers, c.n_phi, c.rho_layers, c.rho_hidden, c.pe_dims, c.num_eigs) == \
        (128, 4, 16, 8, 128, 37, 37)
    assert (c.batch_size, c.epochs, c.learning_rate, c.weight_decay, c.warmup_steps) == (128, 1000, 1e-3, 3e-6, 100)
    assert c.rho_layout == cpu.get_config().rho_layout == "pairs" and "spe" in c.methods and "none" in c.methods
    assert c.expected_device and c.expected_memory and "--config.data_dir=" in paper.__doc__
    assert "dataset" not in cpu.get_config() and train.vocabulary_sizes(cpu.get_config()) == (14, 3)  # MOSES as before


def _tiny(config, zinc_dir, methods):
    config.update(dict(data_dir=str(zinc_dir), seeds=(0,), methods=methods, epochs=1, batch_size=8,
                       eval_batch_size=8, eval_every=1, checkpoint_every=0, log_every=1, warmup_steps=1,
                       show_progress=False, hidden=8, n_layers=1, n_mlp_layers=1, pe_dims=4, n_phi=2, phi_hidden=4,
                       rho_layers=1, rho_hidden=8))
    return config


def test_paper_preset_runs_two_spe_steps_on_a_zinc_replica(zinc_dir, tmp_path):
    c = _tiny(paper.get_config(), zinc_dir, ("spe",))
    result = train.train_and_evaluate(c, str(tmp_path / "work"))
    (metric,) = result.metrics
    assert metric.name == "spe_test_mae" and math.isfinite(metric.values[0])
    (header,) = result.tables
    assert header.startswith("ZINC-12k penalised logP (normalised), 16/3/2 molecules")
    budget = result.extras["budget"]
    assert budget["k"] == 37 and budget["max_nodes"] == 9 and budget["pairs"]["rows_train"] > 0  # rho on pairs
    assert train.build_model(c, "spe", 37, 0).backbone.node_embed.embedding[...].shape == (28, 8)  # 28 atom types
    # a finished run keeps its best validation epoch in its log (what a resumed run starts from)
    assert train._best_logged(tmp_path / "work" / "spe_seed0") == pytest.approx(
        {"val": result.extras["val_mae_spe"], "test": metric.values[0]})


@pytest.mark.slow
def test_paper_preset_runs_every_method_on_a_zinc_replica(zinc_dir, tmp_path):
    c = _tiny(paper.get_config(), zinc_dir, paper.get_config().methods)
    result = train.train_and_evaluate(c, str(tmp_path / "work"))
    assert {m.name for m in result.metrics} == {f"{m}_test_mae" for m in c.methods}
    assert all(math.isfinite(v) for m in result.metrics for v in m.values)


def test_paper_preset_without_data_names_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_ZINC", raising=False)
    c = paper.get_config()
    with pytest.raises(MissingDataError, match="data_dir.*train.pickle and train.index"):
        train.load_splits(c)
    c.data_dir = str(tmp_path)
    with pytest.raises(MissingDataError, match="train.pickle not found"):
        train.load_splits(c)
