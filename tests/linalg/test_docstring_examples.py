"""Issue 11: every public function of the primitive packages documents Args/Returns and has an example that runs
as pasted into a fresh interpreter (each example imports what it uses), in float32 with standard promotion — the
setting of ``pytest --doctest-modules eigenkit/...`` (no tests/conftest.py there) and of a user's session."""

import doctest
import importlib
import inspect

import jax
import pytest

PACKAGES = ["eigenkit.linalg", "eigenkit.graph", "eigenkit.ssm", "eigenkit.manifolds"]


def _public_functions():
    out = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out.append(pytest.param(pkg, name, obj, id=f"{pkg.split('.')[-1]}.{name}"))
    return out


def _has_params(fn):
    return any(p.kind is not p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


@pytest.mark.parametrize("pkg, name, fn", _public_functions())
def test_public_function_documented_and_example_runs_fresh(pkg, name, fn):
    doc = inspect.getdoc(fn) or ""
    if _has_params(fn):
        assert "Args:" in doc, f"{pkg}.{name}: no Args section"
    assert "Returns:" in doc, f"{pkg}.{name}: no Returns section"
    examples = doctest.DocTestParser().get_examples(doc)
    assert examples, f"{pkg}.{name}: no runnable example (>>> lines)"
    test = doctest.DocTest(examples, {}, f"{pkg}.{name}", None, 0, doc)  # fresh namespace: no module globals
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"):
        runner.run(test, out=lambda s: print(s, end=""))
    assert runner.failures == 0, f"{pkg}.{name}: example failed in a fresh namespace (see captured stdout)"
