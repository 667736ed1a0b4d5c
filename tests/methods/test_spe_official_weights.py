"""``spe.load_official_state_dict``: official Graph-COM/SPE ``state_dict`` layouts (from the committed parity fixture,
written by the official PyTorch code) → eigenkit ``SPE`` / ``PEGraphRegressor``: documented conventions, outputs equal
to the official ones, dtype casting, and clear errors for missing / unused keys and wrong shapes."""

import jax
import numpy as np
import pytest
from flax import nnx

from eigenkit.methods import spe


@pytest.fixture(scope="module")
def fx(spe_parity_fixture):
    return spe_parity_fixture


def _sd(fx, prefix):
    """The official ``state_dict`` (NumPy arrays, keys without the fixture's prefix)."""
    return {k[len(prefix):]: v for k, v in fx.items() if k.startswith(prefix)}


def _spe(fx, *, n_phi=None, param_dtype=np.float32, bn_mode=spe.BatchNormMode.OFFICIAL):
    n_psis, psi_hidden, rho_layers, rho_hidden, pe_dims, _ = (int(x) for x in fx["sizes"])
    return spe.SPE(n_phi or n_psis, pe_dims, phi_layers=3, phi_hidden=psi_hidden, rho_layers=rho_layers,
                   rho_hidden=rho_hidden, n_mlp_layers=3, bn_mode=bn_mode, param_dtype=param_dtype,
                   rngs=nnx.Rngs(0))


def _regressor(fx, pe_kind=spe.PEKind.SPE):
    width, pe_dims, n_types, n_edge_types, d, n_psis, psi_hidden = (int(x) for x in fx["model_sizes"])
    return spe.PEGraphRegressor(pe_kind, n_node_types=n_types, n_edge_types=n_edge_types, n_eigs=d, hidden=width,
                                n_layers=2, n_mlp_layers=3, pe_dims=pe_dims, n_phi=n_psis, phi_layers=3,
                                phi_hidden=psi_hidden, rho_layers=2, rho_hidden=width,
                                bn_mode=spe.BatchNormMode.OFFICIAL, rngs=nnx.Rngs(0))


def _eval_inputs(fx, dtype):
    """Official ``Lambda`` / ``V`` / ``edge_index`` of the fixture as a padded eigenkit batch (for ``SPE.__call__``)."""
    n_node = fx["n_node"].astype(int)
    b, n_max, d = len(n_node), int(n_node.max()), fx["Lambda"].shape[1]
    offs = np.concatenate([[0], np.cumsum(n_node)])
    vec = np.zeros((b, n_max, d), dtype)
    adj = np.zeros((b, n_max, n_max), dtype)
    node_mask = np.arange(n_max)[None, :] < n_node[:, None]
    for g in range(b):
        vec[g, :n_node[g]] = fx["V"][offs[g]:offs[g + 1]]
    src, dst = fx["edge_index"]
    gid = fx["batch"][src]
    np.add.at(adj, (gid, dst - offs[gid], src - offs[gid]), 1.0)
    eig_mask = np.arange(d)[None, :] < np.minimum(n_node, d)[:, None]
    return (fx["Lambda"].astype(dtype), vec, eig_mask, node_mask, adj), node_mask


def test_conventions_transpose_stacking_and_batchnorm_order(fx):
    """Linear weights transposed; φ_ℓ stacked in ``psi_list`` order; φ BatchNorm = concat over ℓ; BN running stats."""
    sd = _sd(fx, "param/")
    m = spe.load_official_state_dict(_spe(fx), sd)
    h = int(fx["sizes"][1])
    for ell in range(int(fx["sizes"][0])):
        np.testing.assert_array_equal(m.phi.ws[0][...][ell], sd[f"psi_list.{ell}.layers.0.fc.weight"].T)
        np.testing.assert_array_equal(m.phi.ws[1][...][ell], sd[f"psi_list.{ell}.layers.1.fc.weight"].T)
        np.testing.assert_array_equal(m.phi.ws[2][...][ell], sd[f"psi_list.{ell}.fc.weight"].T)
        np.testing.assert_array_equal(m.phi.bs[2][...][ell], sd[f"psi_list.{ell}.fc.bias"])
        sl = slice(ell * h, (ell + 1) * h)
        np.testing.assert_array_equal(m.phi.norms[1].mean[...][sl], sd[f"psi_list.{ell}.layers.1.bn.running_mean"])
        np.testing.assert_array_equal(m.phi.norms[0].var[...][sl], sd[f"psi_list.{ell}.layers.0.bn.running_var"])
        np.testing.assert_array_equal(m.phi.norms[0].scale[...][sl], sd[f"psi_list.{ell}.layers.0.bn.weight"])
    mlp = m.rho[1].mlp
    np.testing.assert_array_equal(m.rho[1].eps[...], sd["phi.gin.layers.1.eps"])
    np.testing.assert_array_equal(mlp.hidden[0].kernel[...], sd["phi.gin.layers.1.mlp.layers.0.fc.weight"].T)
    np.testing.assert_array_equal(mlp.norms[1].bias[...], sd["phi.gin.layers.1.mlp.layers.1.bn.bias"])
    np.testing.assert_array_equal(mlp.out.kernel[...], sd["phi.gin.layers.1.mlp.fc.weight"].T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_loaded_spe_matches_official_eval_pe(fx, dtype):
    """Loaded through the public function (any param dtype; values are cast), eval-mode PE = the official one."""
    sd = _sd(fx, "param/")
    sd.update({k.rsplit(".", 1)[0] + ".num_batches_tracked": np.array(3) for k in sd if k.endswith("running_mean")})
    m = spe.load_official_state_dict(_spe(fx, param_dtype=dtype), sd)  # num_batches_tracked entries are ignored
    assert m.rho[0].mlp.out.kernel[...].dtype == dtype and m.phi.ws[0][...].dtype == dtype
    m.eval()
    inputs, nm = _eval_inputs(fx, dtype)
    pe = np.asarray(m(*inputs))[nm]
    np.testing.assert_allclose(pe, fx["pe_eval"], rtol=2e-4, atol=2e-5)


def test_prefix_loads_the_spe_of_a_whole_official_model(fx):
    """``prefix`` selects a sub-module's keys: the SPE of the official ``Model`` equals ``PEGraphRegressor.spe``."""
    whole = spe.load_official_state_dict(_regressor(fx), _sd(fx, "model/"))
    width, pe_dims, _, _, _, n_psis, psi_hidden = (int(x) for x in fx["model_sizes"])
    alone = spe.SPE(n_psis, pe_dims, phi_layers=3, phi_hidden=psi_hidden, rho_layers=2, rho_hidden=width,
                    n_mlp_layers=3, rngs=nnx.Rngs(1))
    spe.load_official_state_dict(alone, fx, prefix="model/positional_encoding.")
    for a, b in zip(jax.tree.leaves(nnx.state(alone)), jax.tree.leaves(nnx.state(whole.spe)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_missing_key_names_key_and_shape_and_leaves_model_unchanged(fx):
    sd = _sd(fx, "param/")
    del sd["phi.gin.layers.2.mlp.fc.weight"], sd["psi_list.3.layers.1.bn.running_var"]
    m = _spe(fx)
    before = [np.array(x) for x in jax.tree.leaves(nnx.state(m))]
    with pytest.raises(ValueError, match=r"2 missing keys: 'phi\.gin\.layers\.2\.mlp\.fc\.weight' \(shape \(6, 16\), "
                                         r"for rho\[2\]\.mlp\.out\.kernel\), 'psi_list\.3\.layers\.1\.bn\.running_var' "
                                         r"\(shape \(8,\), for phi\.norms\[1\]\.var\)"):
        spe.load_official_state_dict(m, sd)
    for a, b in zip(before, jax.tree.leaves(nnx.state(m)), strict=True):  # checked before anything is written
        np.testing.assert_array_equal(a, b)


def test_wrong_shape_names_key_expected_shape_and_layout(fx):
    sd = _sd(fx, "param/")
    sd["phi.gin.layers.0.mlp.layers.0.fc.weight"] = sd["phi.gin.layers.0.mlp.layers.0.fc.weight"].T  # [in, out]
    with pytest.raises(ValueError, match=r"1 wrong shape: 'phi\.gin\.layers\.0\.mlp\.layers\.0\.fc\.weight' has shape "
                                         r"\(4, 16\), expected \(16, 4\) \(for rho\[0\]\.mlp\.hidden\[0\]\.kernel; "
                                         r"torch Linear weight \[out, in\]"):
        spe.load_official_state_dict(_spe(fx), sd)


def test_unused_keys_fewer_phi_nets_and_official_options_without_counterpart(fx):
    sd = _sd(fx, "param/")
    # a model with 3 φ nets: psi_list.3.* has no place, and ρ's first layer expects 3 input channels
    with pytest.raises(ValueError, match=r"unused keys: 'psi_list\.3\.fc\.bias'.*wrong shape.*"
                                         r"'phi\.gin\.layers\.0\.mlp\.layers\.0\.fc\.weight' has shape \(16, 4\), "
                                         r"expected \(16, 3\)"):
        spe.load_official_state_dict(_spe(fx, n_phi=3), sd)
    sd["phi.gin.batch_norms.0.weight"] = np.ones(16, np.float32)  # official GIN(bn=True)
    with pytest.raises(ValueError, match=r"1 unused key: 'phi\.gin\.batch_norms\.0\.weight'.*bn=True"):
        spe.load_official_state_dict(_spe(fx), sd)
    # GINPhi's never-called output MLP (phi.mlp.*, quirk 3) is in the official state_dict and is ignored
    assert any(k.startswith("phi.mlp.") for k in _sd(fx, "param/"))


def test_bad_model_arguments(fx):
    with pytest.raises(ValueError, match="model.pe_kind must be PEKind.SPE, got PEKind.LAPPE"):
        spe.load_official_state_dict(_regressor(fx, spe.PEKind.LAPPE), _sd(fx, "model/"))
    with pytest.raises(TypeError, match="must be an eigenkit.methods.spe SPE or PEGraphRegressor, got MLP"):
        from eigenkit.nn import MLP

        spe.load_official_state_dict(MLP(2, 1, 2, 1, rngs=nnx.Rngs(0)), {})
    with pytest.raises(ValueError, match=r"missing keys: 'model/base_model\.gine\.layers\.0\.edge_features\.weight'"
                                         r".*1 unused key: 'model/x'"):  # keys are named with their prefix
        spe.load_official_state_dict(_regressor(fx), {"model/x": np.zeros(1)}, prefix="model/")
