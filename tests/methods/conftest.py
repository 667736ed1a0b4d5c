"""Shared fixtures of the method tests."""

import pathlib

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def spe_parity_fixture():
    """The official Graph-COM/SPE outputs and weights (``experiments/spe/make_parity_fixtures.py``) as a dict."""
    path = FIXTURES / "spe" / "spe_parity.npz"
    if not path.exists():
        pytest.skip(f"{path} missing: run experiments/spe/make_parity_fixtures.py --official-src PATH")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def mlc_parity_fixture():
    """LeslieTrue/CPP ``MLCLoss`` / ``SinkhornDistance`` / ``TotalCodingRate`` outputs
    (``experiments/mlc/make_parity_fixtures.py``) as a dict."""
    path = FIXTURES / "mlc" / "cpp_mlc.npz"
    if not path.exists():
        pytest.skip(f"{path} missing: run experiments/mlc/make_parity_fixtures.py --official-src PATH")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
