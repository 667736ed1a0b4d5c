"""S4D experiment plumbing: configs, the ablation on mnist1d (tiny), labels of the sequential-image data."""

import importlib
import json

import pytest

from experiments.s4d.configs import cpu, paper, smoke


def test_configs_consistent():
    for mod in (smoke, cpu, paper):
        c = mod.get_config()
        assert c.description and c.expected_runtime
        from eigenkit import ssm
        from eigenkit.methods.s4d import Norm

        ssm.Init[c.init.upper()]  # names resolve to enums
        ssm.Discretization[c.discretization.upper()]
        Norm[c.norm.upper()]
        assert c.batch_size % 8 == 0 or c.batch_size in (50,)  # paper: 50 on one accelerator
    assert paper.get_config().c_with_ssm_lr  # scalar-lr image config: C also on the SSM lr
    assert smoke.get_config().num_steps <= 10


@pytest.mark.slow
@pytest.mark.needs_data
def test_ablation_tiny(tmp_path):
    pytest.importorskip("mnist1d", reason="needs mnist1d: pip install mnist1d==0.0.2.post1")
    abl = importlib.import_module("experiments.s4d.ablation")
    out = abl.train_and_evaluate(abl.get_config("smoke"), str(tmp_path))
    assert len(out.metrics) == 8
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert [m["name"] for m in saved["metrics"]] == [m.name for m in out.metrics]
    assert all(0.0 <= m["mean"] <= 1.0 and len(m["values"]) == 2 for m in saved["metrics"])
    assert "| S4D-LegS |" in (tmp_path / "ablation.md").read_text()
