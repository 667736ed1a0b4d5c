"""pytest plugin (``-p doctest_env`` in pyproject): the docstring examples (``--doctest-modules`` over
``eigenkit/``) run as a user would paste them — JAX defaults (float32, standard dtype promotion), whatever
``tests/conftest.py`` set for the test suite (float64 and strict promotion are process-wide settings there). JAX is
imported lazily: ``tests/conftest.py`` must set the fake-device flags before the first import."""

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _user_defaults_for_docstring_examples(request):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    import jax

    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"):
        yield
