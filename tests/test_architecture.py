"""The import direction of the house (README "Layout"), checked on the source with ``ast``:

* primitives (``eigenkit.linalg``, ``graph``, ``ssm``, ``manifolds``) import no Flax and nothing of ``eigenkit.nn``,
  ``methods``, ``train``, ``data`` or ``metrics``;
* a method never imports another method; nothing in ``eigenkit`` imports ``experiments``;
* tests of ``eigenkit.train`` do not go through an experiment; benchmarks use no experiment's private helpers.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRIMITIVES = ("linalg", "graph", "ssm", "manifolds")


def _imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _files(*parts: str) -> list[pathlib.Path]:
    return sorted(ROOT.joinpath(*parts).rglob("*.py"))


@pytest.mark.parametrize("pkg", PRIMITIVES)
def test_primitives_import_no_flax_and_nothing_above(pkg):
    banned = ("flax", "eigenkit.nn", "eigenkit.methods", "eigenkit.train", "eigenkit.data", "eigenkit.metrics",
              "experiments")
    bad = [(f.relative_to(ROOT), m) for f in _files("eigenkit", pkg) for m in _imports(f)
           if any(m == b or m.startswith(b + ".") for b in banned)]
    assert not bad, bad


def test_methods_do_not_import_each_other_and_nothing_imports_experiments():
    bad = []
    for f in _files("eigenkit"):
        rel = f.relative_to(ROOT / "eigenkit").parts
        own = rel[1] if rel[0] == "methods" and len(rel) > 2 else None
        for m in _imports(f):
            if m == "experiments" or m.startswith("experiments."):
                bad.append((str(f.relative_to(ROOT)), m))
            parts = m.split(".")
            if parts[:2] == ["eigenkit", "methods"] and len(parts) > 2 and own is not None and parts[2] != own:
                bad.append((str(f.relative_to(ROOT)), m))
    assert not bad, bad


def test_train_tests_and_benchmarks_stay_in_their_lane():
    bad = [(str(f.relative_to(ROOT)), m) for f in _files("tests", "train") for m in _imports(f)
           if m.startswith("experiments")]
    allowed = {"experiments._official", "experiments.benchmarks._common"}  # the shared helpers
    for f in _files("experiments", "benchmarks"):
        for m in _imports(f):
            parts = m.split(".")
            private = any(p.startswith("_") for p in parts[1:])
            if parts[0] == "experiments" and private and not any(m.startswith(a) for a in allowed):
                bad.append((str(f.relative_to(ROOT)), m))
    assert not bad, bad


def test_benchmark_helper(tmp_path):
    """The shared benchmark helper: times, machine info (cores, load) and JSON output."""
    import json

    from experiments.benchmarks import _common

    calls = []
    times = _common.call_times(lambda: calls.append(1), 3)
    assert len(times) == 3 and len(calls) == 3 and all(t >= 0 for t in times)
    first, med = _common.first_and_median(lambda: None, 2)
    assert first >= 0 and med >= 0
    with pytest.raises(ValueError, match="repeats"):
        _common.call_times(lambda: None, 0)
    _common.write_result({"x": 1}, tmp_path / "a" / "r.json")
    data = json.loads((tmp_path / "a" / "r.json").read_text())
    machine = data["machine_at_write"]
    assert data["x"] == 1 and machine["cpu_count"] >= 1 and len(machine["loadavg"]) == 3
