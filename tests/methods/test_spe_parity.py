"""Numerical parity with the official Graph-COM/SPE ``StableExpressivePE`` (GINPhi ρ, MLP φ list) on the same weights.

Fixture: ``tests/fixtures/spe/spe_parity.npz``, written by ``experiments/spe/make_parity_fixtures.py`` from the
official PyTorch code (commit stored in the file). Compares the W tensors and the PEs in eval mode (random running
statistics) and in train mode (batch statistics; eigenkit ``BatchNormMode.OFFICIAL`` with the batch padded to its
largest graph reproduces the official unmasked statistics).
"""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.methods import spe

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "spe" / "spe_parity.npz"


@pytest.fixture(scope="module")
def fx():
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} missing: run experiments/spe/make_parity_fixtures.py --official-src PATH")
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


def _set(var, value):
    var[...] = jnp.asarray(np.asarray(value, np.float32).reshape(var[...].shape))


def _load_bn(bn, p, prefix, rows=None):
    for ours, theirs in (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"), ("var", "running_var")):
        value = p[f"{prefix}.{theirs}"] if rows is None else np.concatenate([p[f"{r}.{theirs}"] for r in rows])
        _set(getattr(bn, ours), value)


def _load_mlp(mlp, p, pre):
    """official MLP: layers[i].fc / .bn, then fc  ->  eigenkit MLP: hidden[i], norms[i], out."""
    for i in range(len(mlp.hidden)):
        _set(mlp.hidden[i].kernel, p[f"{pre}.layers.{i}.fc.weight"].T)
        _set(mlp.hidden[i].bias, p[f"{pre}.layers.{i}.fc.bias"])
        _load_bn(mlp.norms[i], p, f"{pre}.layers.{i}.bn")
    _set(mlp.out.kernel, p[f"{pre}.fc.weight"].T)
    _set(mlp.out.bias, p[f"{pre}.fc.bias"])


def _load_spe(m, p, pre, n_psis):
    # φ (official psi_list[ℓ]): layers[i].fc / .bn, then fc; stacked over ℓ
    for i in range(len(m.phi.ws) - 1):
        _set(m.phi.ws[i], np.stack([p[f"{pre}psi_list.{l}.layers.{i}.fc.weight"].T for l in range(n_psis)]))
        _set(m.phi.bs[i], np.stack([p[f"{pre}psi_list.{l}.layers.{i}.fc.bias"] for l in range(n_psis)]))
        _load_bn(m.phi.norms[i], p, None, rows=[f"{pre}psi_list.{l}.layers.{i}.bn" for l in range(n_psis)])
    _set(m.phi.ws[-1], np.stack([p[f"{pre}psi_list.{l}.fc.weight"].T for l in range(n_psis)]))
    _set(m.phi.bs[-1], np.stack([p[f"{pre}psi_list.{l}.fc.bias"] for l in range(n_psis)]))
    # ρ (official phi = GINPhi.gin): layers[k].eps, layers[k].mlp
    for k, layer in enumerate(m.rho):
        _set(layer.eps, p[f"{pre}phi.gin.layers.{k}.eps"])
        _load_mlp(layer.mlp, p, f"{pre}phi.gin.layers.{k}.mlp")


def _model(fx, bn_mode):
    n_psis, psi_hidden, rho_layers, rho_hidden, pe_dims, _ = (int(x) for x in fx["sizes"])
    m = spe.SPE(n_psis, pe_dims, phi_layers=3, phi_hidden=psi_hidden, rho_layers=rho_layers, rho_hidden=rho_hidden,
                n_mlp_layers=3, bn_mode=bn_mode, rngs=nnx.Rngs(0))
    _load_spe(m, {k[len("param/"):]: v for k, v in fx.items() if k.startswith("param/")}, "", n_psis)
    return m


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
    p = {k[len("model/"):]: v for k, v in fx.items() if k.startswith("model/")}
    _load_spe(m.spe, p, "positional_encoding.", n_psis)
    bb = m.backbone
    _set(bb.node_embed.embedding, p["node_features.weight"])
    _set(bb.pe_embed.kernel, p["pe_embedding.weight"].T)
    _set(bb.pe_embed.bias, p["pe_embedding.bias"])
    for k, layer in enumerate(bb.gine.layers):
        pre = f"base_model.gine.layers.{k}"
        _set(layer.eps, p[f"{pre}.eps"])
        _set(layer.edge_embed.embedding, p[f"{pre}.edge_features.weight"])
        _load_mlp(layer.pe_mlp, p, f"{pre}.pe_embedding")
        _load_mlp(layer.mlp, p, f"{pre}.mlp")
    _load_mlp(bb.head, p, "base_model.mlp")
    if mode == "eval":
        m.eval()
    n_node = fx["model_n_node"].astype(np.int64)
    src, dst = fx["model_edge_index"].astype(np.int64)
    offs = np.concatenate([[0], np.cumsum(n_node)])
    n_edge = np.array([np.sum((src >= offs[g]) & (src < offs[g + 1])) for g in range(len(n_node))])
    g = jraph.GraphsTuple(nodes=fx["model_x"].astype(np.int32), edges=fx["model_edge_attr"].astype(np.int32),
                          senders=src, receivers=dst, n_node=n_node, n_edge=n_edge, globals=None)
    n_max = int(n_node.max())
    batch = spe.make_graph_batch(g, max_nodes=n_max, max_edges=int(n_edge.max()), k=d)
    vec = np.zeros((len(n_node), n_max, d), np.float32)
    for b in range(len(n_node)):
        vec[b, :n_node[b]] = fx["model_V"][offs[b]:offs[b + 1]]
    eig_mask = np.arange(d)[None, :] < np.minimum(n_node, d)[:, None]
    batch = batch._replace(eigvals=fx["model_Lambda"], eigvecs=vec, eig_mask=eig_mask)
    np.testing.assert_allclose(m(batch), fx[f"model_y_{mode}"], rtol=2e-4, atol=2e-5)
