"""The experiment runner: discovery, clear errors, and one smoke run of every registered experiment."""

import json
import os
import subprocess
import sys

import pytest

from eigenkit.data import MissingDataError, fashion_mnist
from experiments import __main__ as runner
from experiments import _registry


def test_registry_lists_digits():
    assert "digits_mlp" in _registry.list_methods()
    for m in _registry.list_methods():
        assert set(_registry.list_presets(m)) == {"smoke", "cpu", "paper"}, m
        for preset in ("smoke", "cpu", "paper"):
            c = _registry.get_config(m, preset)
            assert c.description and c.expected_runtime, (m, preset)


def test_unknown_method_and_preset():
    with pytest.raises(_registry.UnknownExperimentError, match="unknown method 'nope'.*digits_mlp"):
        _registry.get_config("nope", "cpu")
    with pytest.raises(_registry.UnknownExperimentError, match="unknown preset 'huge'.*cpu"):
        _registry.get_config("digits_mlp", "huge")
    with pytest.raises(SystemExit):
        runner.main(["run", "nope", "--preset", "cpu"])


def test_missing_dataset_names_the_package(tmp_path):
    with pytest.raises(MissingDataError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        fashion_mnist("validation")


def test_run_writes_summary(tmp_path):
    rc = runner.main(["run", "digits_mlp", "--preset", "smoke", "--workdir", str(tmp_path / "w"),
                      "--results", str(tmp_path / "r")])
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["status"] == "ok" and 0.0 <= row["metrics"]["test_accuracy"] <= 1.0
    assert "digits_mlp" in (tmp_path / "r" / "summary.md").read_text()
    # --merge keeps other methods' rows of the same preset and replaces the rerun method's row
    summary["rows"].append({"method": "zz_other", "status": "ok", "metrics": {"x": 1.0}, "wall_time_s": 1.0,
                            "command": "earlier", "machine": {}})
    (tmp_path / "r" / "summary.json").write_text(json.dumps(summary))
    assert runner.main(["run", "digits_mlp", "--preset", "smoke", "--workdir", str(tmp_path / "w"),
                        "--results", str(tmp_path / "r"), "--merge"]) == 0
    rows = json.loads((tmp_path / "r" / "summary.json").read_text())["rows"]
    assert sorted(r["method"] for r in rows) == ["digits_mlp", "zz_other"]
    assert "`earlier`" in (tmp_path / "r" / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in _registry.list_methods() if m != "digits_mlp"])
def test_smoke_preset_runs(method, tmp_path):
    """Every registered experiment's smoke preset runs end to end in a fresh process on one device."""
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-m", "experiments", "run", method, "--preset", "smoke", "--workdir", str(tmp_path / "w"),
         "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    row = json.loads((tmp_path / "r" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok" and row["metrics"], row
