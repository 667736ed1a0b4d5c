"""Numerical parity with the official Graph-COM/SPE ``StableExpressivePE`` (GINPhi ρ, MLP φ list) on the same weights.

Fixture: ``tests/fixtures/spe/spe_parity.npz``, written by ``experiments/spe/make_parity_fixtures.py`` from the
official PyTorch code (commit stored in the file). The official ``state_dict`` arrays (keys ``param/…`` for the SPE,
``model/…`` for the whole ZINC ``Model``) are loaded with the public ``spe.load_official_state_dict``. Compares the
W tensors and the PEs in eval mode (random running statistics) and in train mode (batch statistics; eigenkit
``BatchNormMode.OFFICIAL`` with the batch padded to its largest graph reproduces the official unmasked statistics).
"""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.methods import spe


@pytest.fixture(scope="module")
def fx(spe_parity_fixture):
    return spe_parity_fixture


def _model(fx, bn_mode):
    n_psis, psi_hidden, rho_layers, rho_hidden, pe_dims, _ = (int(x) for x in fx["sizes"])
    m = spe.SPE(n_psis, pe_dims, phi_layers=3, phi_hidden=psi_hidden, rho_layers=rho_layers, rho_hidden=rho_hidden,
                n_mlp_layers=3, bn_mode=bn_mode, rngs=nnx.Rngs(0))
    return spe.load_official_state_dict(m, fx, prefix="param/")


def _inputs(fx):
    n_node = fx["n_node"].astype(int)
    b, n_max, d = len(n_node), int(n_node.max()), fx["Lambda"].shape[1]
    offs = np.concatenate([[0], np.cumsum(n_node)])
    vec = np.zeros((b, n_max, d), np.float32)
    adj = np.zeros((b, n_max, n_max), np.float32)
    node_mask = np.zeros((b, n_max), bool)
    for g in range(b):
        vec[g, :n_node[g]] = fx["V"][offs[g]:offs[g + 1]]
        node_mask[g, :n_node[g]] = True
    src, dst = fx["edge_index"]
    gid = fx["batch"][src]
    np.add.at(adj, (gid, dst - offs[gid], src - offs[gid]), 1.0)  # messages source -> target
    eig_mask = np.arange(d)[None, :] < np.minimum(n_node, d)[:, None]
    return (jnp.asarray(fx["Lambda"]), jnp.asarray(vec), jnp.asarray(eig_mask), jnp.asarray(node_mask),
            jnp.asarray(adj)), node_mask


def _official_eigenpairs(lam, v, n_node):
    """Official ``Lambda [B, D]`` / ``V [N_sum, D]`` → per-graph ``[d_b]`` / ``[n_b, d_b]``, ``d_b = min(n_b, D)``."""
    d = [min(int(n), lam.shape[1]) for n in n_node]
    vs = np.split(v, np.cumsum(n_node)[:-1])
    return [lam[b, :d[b]] for b in range(len(d))], [vs[b][:, :d[b]] for b in range(len(d))]


def test_fixture_provenance(fx):
    assert str(fx["commit"]).startswith("22b10033564119f5296bf76d2c012489ef2b4aac")


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_w_tensor_and_pe_match_official(fx, mode):
    model = _model(fx, spe.BatchNormMode.OFFICIAL)
    if mode == "eval":
        model.eval()
    (lam, vec, eig_mask, node_mask, adj), nm = _inputs(fx)
    w = model.spectral_tensor(lam, vec, eig_mask)
    np.testing.assert_allclose(w, fx[f"W_{mode}"], rtol=1e-4, atol=2e-6)
    pe = np.asarray(model(lam, vec, eig_mask, node_mask, adj))[nm]
    np.testing.assert_allclose(pe, fx[f"pe_{mode}"], rtol=2e-4, atol=2e-5)


def test_masked_mode_differs_from_official_in_train_mode_only(fx):
    """MASKED BN excludes padded eigenvalues / columns: same as official in eval mode, different in train mode."""
    (lam, vec, eig_mask, node_mask, adj), nm = _inputs(fx)
    masked = _model(fx, spe.BatchNormMode.MASKED)
    pe_train = np.asarray(masked(lam, vec, eig_mask, node_mask, adj))[nm]
    assert not np.allclose(pe_train, fx["pe_train"], atol=1e-3)
    masked = _model(fx, spe.BatchNormMode.MASKED)  # fresh: the train-mode call updated the running statistics
    masked.eval()
    np.testing.assert_allclose(np.asarray(masked(lam, vec, eig_mask, node_mask, adj))[nm], fx["pe_eval"],
                               rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_full_model_matches_official(fx, mode):
    """Official ``Model`` (embedding + SPE + GINE base, ZINC wiring, pe_dims 37) vs PEGraphRegressor(SPE)."""
    import jraph

    width, pe_dims, n_types, n_edge_types, d, n_psis, psi_hidden = (int(x) for x in fx["model_sizes"])
    m = spe.PEGraphRegressor(spe.PEKind.SPE, n_node_types=n_types, n_edge_types=n_edge_types, n_eigs=d,
                             hidden=width, n_layers=2, n_mlp_layers=3, pe_dims=pe_dims, n_phi=n_psis, phi_layers=3,
                             phi_hidden=psi_hidden, rho_layers=2, rho_hidden=width,
                             bn_mode=spe.BatchNormMode.OFFICIAL, rngs=nnx.Rngs(0))
    spe.load_official_state_dict(m, fx, prefix="model/")
    if mode == "eval":
        m.eval()
    n_node = fx["model_n_node"].astype(np.int64)
    src, dst = fx["model_edge_index"].astype(np.int64)
    offs = np.concatenate([[0], np.cumsum(n_node)])
    n_edge = np.array([np.sum((src >= offs[g]) & (src < offs[g + 1])) for g in range(len(n_node))])
    g = jraph.GraphsTuple(nodes=fx["model_x"].astype(np.int32), edges=fx["model_edge_attr"].astype(np.int32),
                          senders=src, receivers=dst, n_node=n_node, n_edge=n_edge, globals=None)
    # the official eigenpairs, as stored by its preprocessing: d_b = min(n_b, D) pairs, zero-padded to D
    lam, vec = _official_eigenpairs(fx["model_Lambda"], fx["model_V"], n_node)
    batch = spe.make_graph_batch(g, max_nodes=int(n_node.max()), max_edges=int(n_edge.max()), k=d, eigvals=lam,
                                 eigvecs=vec)
    np.testing.assert_allclose(m(batch), fx[f"model_y_{mode}"], rtol=2e-4, atol=2e-5)
