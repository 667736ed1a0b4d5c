"""Test-wide settings (eigenkit/ARCHITECTURE.md rules 4, 7, 8).

* 8 fake CPU devices, so sharding tests run on a real ``(8,)`` mesh without hardware;
  must be set before JAX initialises its backends, hence at import time here.
* float64 enabled: every primitive is checked in float32 **and** float64 against float64 NumPy/SciPy;
  code must therefore be explicit about dtypes (nothing silently becomes float64 on a TPU user's machine).
* strict dtype promotion: mixing float32 and float64 (or int and float arrays) raises instead of promoting.
"""

import os
import pathlib

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Per-dtype tolerances used across the suite: (rtol, atol) against a float64 reference.
TOL = {np.float32: (2e-4, 2e-5), np.float64: (1e-9, 1e-11)}


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def tol(dtype):
    return TOL[dtype]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices: {jax.device_count()} x {jax.devices()[0].platform}"


# The ETH/UCY recordings are not shipped: tests read $EIGENKIT_ETHUCY or the developers' ../shared/data/ethucy.
ETHUCY_ROOT = pathlib.Path(os.environ.get("EIGENKIT_ETHUCY")
                           or pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ethucy")


@pytest.fixture(scope="session")
def ethucy_dir():
    """The ETH/UCY Social-GAN folder; skips (saying what to set) when it is absent."""
    if not ETHUCY_ROOT.is_dir():
        pytest.skip(f"ETH/UCY data not found at {ETHUCY_ROOT}: set EIGENKIT_ETHUCY to the Social-GAN folder "
                    "<root>/<scene>/<split>/*.txt (developers: ../shared/data/ethucy)")
    return ETHUCY_ROOT
