"""The experiment runner: discovery, overrides, resumable ``run all``, per-preset results, one-line errors, and one
smoke run of every registered experiment (methods and studies)."""

import json
import os
import subprocess
import sys

import pytest

from eigenkit.data import MissingDataError, fashion_mnist
from experiments import __main__ as runner
from experiments import _contract, _registry


def test_registry_lists_methods_and_studies():
    assert "digits_mlp" in _registry.list_methods()
    assert {"s4d.ablation", "spe.stability", "spe.ood"} <= set(_registry.list_studies())
    for m in _registry.list_methods():
        assert set(_registry.list_presets(m)) == {"smoke", "cpu", "paper"}, m
    for name in _registry.list_experiments():
        for preset in _registry.list_presets(name):
            c = _registry.get_config(name, preset)
            assert c.description and c.expected_runtime, (name, preset)
            assert "lr" not in c and "num_epochs" not in c and "progress" not in c, (name, preset)  # one vocabulary


def test_unknown_method_and_preset():
    with pytest.raises(_registry.UnknownExperimentError, match="unknown experiment 'nope'.*digits_mlp"):
        _registry.get_config("nope", "cpu")
    with pytest.raises(_registry.UnknownExperimentError, match="unknown preset 'huge'.*cpu"):
        _registry.get_config("digits_mlp", "huge")
    assert runner.main(["run", "nope", "--preset", "cpu"]) == 2


def test_missing_dataset_names_where_the_path_came_from(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_FASHION_MNIST", raising=False)
    monkeypatch.setattr("eigenkit.data._images.FASHION_MNIST_DIR", str(tmp_path / "none"))
    with pytest.raises(MissingDataError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train")
    monkeypatch.setenv("EIGENKIT_FASHION_MNIST", str(tmp_path))
    with pytest.raises(MissingDataError, match=f"EIGENKIT_FASHION_MNIST={tmp_path}") as e:
        fashion_mnist("train")
    assert "apt-get install" not in str(e.value)  # the package may well be installed; the variable is wrong
    with pytest.raises(MissingDataError, match="root argument"):
        fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        fashion_mnist("validation")


def test_config_overrides():
    c = _registry.get_config("gcr", "cpu")
    runner.apply_overrides(c, ["--config.epochs=2", "--config.head_dims=(8,)", "--config.show_progress", "false",
                               "--config.learning_rate=0.1"])
    assert c.epochs == 2 and c.head_dims == (8,) and c.show_progress is False and c.learning_rate == 0.1
    with pytest.raises(runner.ConfigOverrideError, match="no key 'epochz'"):
        runner.apply_overrides(c, ["--config.epochz=2"])
    with pytest.raises(runner.ConfigOverrideError, match="epochs=two"):
        runner.apply_overrides(c, ["--config.epochs=two"])
    with pytest.raises(runner.ConfigOverrideError, match="unexpected argument"):
        runner.apply_overrides(c, ["--epochs=2"])


def test_config_enum_and_hash():
    from eigenkit.nn import Pooling

    assert _contract.config_enum(Pooling, "MEAN", key="pooling") is Pooling.MEAN
    assert _contract.config_enum(Pooling, "sum", key="pooling") is Pooling.SUM
    with pytest.raises(ValueError, match="config.pooling='max' is not a Pooling; choose one of: mean, sum, last"):
        _contract.config_enum(Pooling, "max", key="pooling")
    a, b = _registry.get_config("gcr", "cpu"), _registry.get_config("gcr", "cpu")
    b.show_progress, b.log_every = not b.show_progress, 7  # presentation: same result
    assert _contract.config_hash(a) == _contract.config_hash(b)
    b.epochs += 1
    assert _contract.config_hash(a) != _contract.config_hash(b)


def _run(tmp_path, *args):
    return runner.main(["run", *args, "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "r")])


def _rows(tmp_path, preset):
    return {r["name"]: r for r in json.loads((tmp_path / "r" / preset / "summary.json").read_text())["rows"]}


def test_run_writes_typed_rows_and_skips_finished_work(tmp_path, capsys):
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke") == 0
    row = _rows(tmp_path, "smoke")["digits_mlp"]
    assert row["status"] == "ok" and row["config_hash"]
    metrics = {m["name"]: m for m in row["metrics"]}
    assert not metrics["test_accuracy"]["baseline"] and metrics["logreg_test_accuracy"]["baseline"]
    assert 0.0 <= metrics["test_accuracy"]["mean"] <= 1.0 and metrics["test_accuracy"]["seeds"] == [0]
    md = (tmp_path / "r" / "smoke" / "summary.md").read_text()
    assert "digits_mlp" in md and "logreg_test_accuracy" in md
    page = tmp_path / "r" / "smoke" / "digits_mlp"
    assert page.with_suffix(".md").exists() and page.with_suffix(".png").exists()
    capsys.readouterr()
    # the same command again: skipped, nothing rewritten
    before = (tmp_path / "r" / "smoke" / "summary.json").read_text()
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke") == 0
    assert "skipped" in capsys.readouterr().out
    assert (tmp_path / "r" / "smoke" / "summary.json").read_text() == before
    # a presentation-only change still skips; a real change reruns and keeps the old row in history.jsonl
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke", "--config.log_every=1") == 0
    assert "skipped" in capsys.readouterr().out
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke", "--config.num_steps=3", "--force") == 0
    out = capsys.readouterr().out
    assert "skipped" not in out and "-> digits_mlp ok" in out
    assert _rows(tmp_path, "smoke")["digits_mlp"]["config"]["num_steps"] == 3
    history = (tmp_path / "r" / "smoke" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["config"]["num_steps"] == 6


def test_a_smoke_run_after_a_cpu_run_leaves_the_cpu_summary_intact(tmp_path):
    assert _run(tmp_path, "digits_mlp", "--preset", "cpu", "--config.num_steps=16", "--config.eval_every=0") == 0
    cpu_json = (tmp_path / "r" / "cpu" / "summary.json").read_text()
    cpu_md = (tmp_path / "r" / "cpu" / "summary.md").read_text()
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke") == 0
    assert (tmp_path / "r" / "cpu" / "summary.json").read_text() == cpu_json
    assert (tmp_path / "r" / "cpu" / "summary.md").read_text() == cpu_md
    assert set(_rows(tmp_path, "smoke")) == {"digits_mlp"} and set(_rows(tmp_path, "cpu")) == {"digits_mlp"}


def test_expected_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke") == 0
    capsys.readouterr()
    # same workdir, a different model: the checkpoint refuses, as one line on stderr, no traceback
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke", "--config.hidden=8", "--force") == 2
    err = capsys.readouterr().err
    assert "different config" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _rows(tmp_path, "smoke")["digits_mlp"]["status"] == "failed"
    assert _run(tmp_path, "digits_mlp", "--preset", "smoke", "--config.hiden=8") == 2
    assert "no key 'hiden'" in capsys.readouterr().err


def test_list_shows_descriptions_presets_and_runtimes(capsys):
    assert runner.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "s4d.ablation" in out and "--preset cpu" in out and "expected" not in out.split("\n")[0]
    assert _registry.get_config("gcr", "cpu").expected_runtime in out


@pytest.mark.slow
@pytest.mark.needs_data
def test_s4d_smoke_with_a_step_override(tmp_path):
    try:
        fashion_mnist("test")
    except MissingDataError as e:
        pytest.skip(str(e))
    assert _run(tmp_path, "s4d", "--preset", "smoke", "--config.num_steps=3") == 0
    row = _rows(tmp_path, "smoke")["s4d"]
    assert row["status"] == "ok" and row["config"]["num_steps"] == 3
    metrics = json.loads((tmp_path / "w" / "s4d" / "smoke" / "metrics.json").read_text())
    assert metrics["step"] == 3


#: Optional data packages of the experiments' smoke runs: (experiment or method, import name, install command).
_DATA_PACKAGES = (
    ("s4d.ablation", "mnist1d", "pip install mnist1d==0.0.2.post1"),
    ("spe", "moses", "pip install --no-deps molsets==0.3.1"),
    ("spe", "rdkit", "pip install rdkit==2026.9.1"),
)


def _data_packages(name: str) -> list[tuple[str, str]]:
    """(import name, install command) of what ``name`` (``method`` or ``method.study``) needs."""
    return [(pkg, hint) for exp, pkg, hint in _DATA_PACKAGES if name == exp or name.split(".")[0] == exp]


def _needs(name):
    """Skip with the install hint when an experiment's optional data package is missing (a fast pre-check; the run
    itself is the authoritative check, see :func:`_skip_if_data_missing`)."""
    import importlib.util

    for package, hint in _data_packages(name):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{name} needs the Python package '{package}': {hint}")


def _skip_if_data_missing(name, out, results):
    """A run that stopped on ``MissingDataError`` (the runner's expected error: exit status 2, the row's error
    ``MissingDataError: <what to install>``) skips with the loader's message instead of failing — e.g. ``moses``
    importable but not the MOSES package with its data file, or a data package the pre-check does not know."""
    summary = results / "smoke" / "summary.json"
    if out.returncode != 2 or not summary.exists():
        return
    for row in json.loads(summary.read_text())["rows"]:
        if row["name"] == name and row["status"] == "failed" and row.get("error", "").startswith("MissingDataError"):
            pytest.skip(f"{name}: {row['error']}")


def _smoke_run(name, tmp_path, env=None):
    """Run ``name``'s smoke preset in a fresh process on one device; skip when its data is not installed."""
    _needs(name)
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu", **(env or {}))
    out = subprocess.run(
        [sys.executable, "-m", "experiments", "run", name, "--preset", "smoke", "--workdir", str(tmp_path / "w"),
         "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=600,
    )
    _skip_if_data_missing(name, out, tmp_path / "r")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.needs_data) if _data_packages(n) else n
    for n in _registry.list_experiments() if n != "digits_mlp"
])
def test_smoke_preset_runs(name, tmp_path):
    """Every registered experiment's smoke preset runs end to end in a fresh process on one device."""
    out = _smoke_run(name, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    row = json.loads((tmp_path / "r" / "smoke" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok" and row["metrics"], row
    assert "INFO" not in out.stderr, out.stderr[-2000:]  # one logging setup: no Orbax INFO flood


def test_spe_smoke_skips_with_the_install_hint_when_molsets_is_missing(tmp_path, monkeypatch):
    """Simulated missing MOSES: (1) not importable here → the pre-check skips; (2) importable here but not in the
    run's process (a module ``moses`` shadowing the package, as a broken install would) → the run stops on
    ``MissingDataError`` and the test skips with the loader's install command instead of failing."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "moses" else real(n, *a))
    with pytest.raises(pytest.skip.Exception, match=r"spe needs the Python package 'moses': pip install --no-deps "
                                                    r"molsets==0\.3\.1"):
        _smoke_run("spe", tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if real("rdkit") is None or real("moses") is None:
        pytest.skip("the shadowing check needs molsets and rdkit installed (the pre-check covers the rest)")
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "moses.py").write_text("")  # a module, not the package: find_package_dir reports it missing
    path = os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(pytest.skip.Exception, match=r"spe: MissingDataError: .*pip install --no-deps molsets==0\.3\.1"):
        _smoke_run("spe", tmp_path, env={"PYTHONPATH": path})
