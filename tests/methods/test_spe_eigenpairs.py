"""``spe.make_graph_batch`` with given eigenpairs (``eigvals=`` / ``eigvecs=``) and with an eigen axis wider than the
node budget (``k > max_nodes``, the official zero padding of ``Lambda [B, D]`` / ``V [N_sum, D]`` to the PE width D).

The official semantics of the padding: ``zinc/trainer.py`` ``pre_transform`` stores ``d = min(n, D)`` pairs
zero-padded to ``D`` whatever the graph size, and ``StableExpressivePE`` runs φ on all ``B × D`` slots, so φ's
train-mode BatchNorm statistics include the padded zeros. Hence with ``BatchNormMode.OFFICIAL`` the eigen axis must be
``k = D`` (also when ``D > max_nodes``) to match the official train-mode PE, while eval mode and
``BatchNormMode.MASKED`` do not depend on ``k >= max(n_b)``. Reference: the official outputs of the committed parity
fixture (eval mode), and a NumPy transcription of the official forward (train mode) that is checked against the
fixture's official train- and eval-mode PEs first.
"""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest
from flax import nnx

from eigenkit.methods import spe


@pytest.fixture(scope="module")
def fx(spe_parity_fixture):
    return spe_parity_fixture


# ----------------------------------------------------------------------------------------------- helpers
def _random_graphs(rng, sizes):
    gs = []
    for n in sizes:
        a = np.triu(rng.random((n, n)) < 0.5, 1)
        a = a | a.T
        s, r = np.nonzero(a)
        gs.append(jraph.GraphsTuple(nodes=rng.integers(0, 5, n).astype(np.int32),
                                    edges=rng.integers(1, 4, len(s)).astype(np.int32), senders=s, receivers=r,
                                    n_node=np.array([n]), n_edge=np.array([len(s)]),
                                    globals=np.array([rng.normal()], np.float32)))
    return jraph.batch(gs)


def _fixture_graphs(fx, which):
    """Graphs ``which`` of the SPE fixture as a jraph batch, with their official eigenpairs (``d_b = min(n_b, D)``)."""
    n_node = fx["n_node"].astype(np.int64)
    offs = np.concatenate([[0], np.cumsum(n_node)])
    src, dst = fx["edge_index"]
    gid = fx["batch"][src]
    d_pe = fx["Lambda"].shape[1]
    snd, rcv, ne, lam, vec, base = [], [], [], [], [], 0
    for b in which:
        e = gid == b
        snd.append(src[e] - offs[b] + base)
        rcv.append(dst[e] - offs[b] + base)
        ne.append(int(e.sum()))
        d = min(int(n_node[b]), d_pe)
        lam.append(fx["Lambda"][b, :d])
        vec.append(fx["V"][offs[b]:offs[b + 1], :d])
        base += int(n_node[b])
    nn = n_node[list(which)]
    g = jraph.GraphsTuple(nodes=np.zeros(base, np.int32), edges=np.ones(sum(ne), np.int32),
                          senders=np.concatenate(snd), receivers=np.concatenate(rcv), n_node=nn,
                          n_edge=np.array(ne), globals=None)
    rows = np.concatenate([np.arange(offs[b], offs[b + 1]) for b in which])
    return g, lam, vec, rows


def _spe_model(fx, bn_mode):
    n_psis, psi_hidden, rho_layers, rho_hidden, pe_dims, _ = (int(x) for x in fx["sizes"])
    m = spe.SPE(n_psis, pe_dims, phi_layers=3, phi_hidden=psi_hidden, rho_layers=rho_layers, rho_hidden=rho_hidden,
                n_mlp_layers=3, bn_mode=bn_mode, rngs=nnx.Rngs(0))
    return spe.load_official_state_dict(m, fx, prefix="param/")


def _pe(model, batch):
    """SPE of a GraphBatch, on the real nodes only ``[N_sum, pe_dims]``."""
    b, n = batch.eigvecs.shape[:2]
    node_mask = jnp.asarray(batch.node_mask.reshape(b, n))
    pe = model(jnp.asarray(batch.eigvals), jnp.asarray(batch.eigvecs), jnp.asarray(batch.eig_mask), node_mask,
               spe.dense_adjacency_of_batch(batch))
    return np.asarray(pe)[batch.node_mask.reshape(b, n)]


def _official_reference(p, lam, v, edge_index, n_node, *, train):
    """NumPy (float64) transcription of the official forward: ``StableExpressivePE`` + ``GINPhi`` (src/
    stable_expressive_pe.py), ``GIN`` (src/gin.py), ``MLP`` (src/mlp.py; ``BatchNorm1d`` on ``reshape(-1, F)``,
    i.e. statistics over every slot it is given: all ``B × D`` eigenvalue slots in φ, ``N_sum × N_max`` in ρ).

    ``lam [B, D]``, ``v [N_sum, D]`` (official zero-padded layout), ``edge_index [2, E]`` global → ``PE [N_sum, p]``.
    """
    p = {k: np.asarray(x, np.float64) for k, x in p.items()}

    def bn(x, pre):
        flat = x.reshape(-1, x.shape[-1])
        if train:
            mean, var = flat.mean(0), flat.var(0)
        else:
            mean, var = p[f"{pre}.running_mean"], p[f"{pre}.running_var"]
        return ((flat - mean) / np.sqrt(var + 1e-5) * p[f"{pre}.weight"] + p[f"{pre}.bias"]).reshape(x.shape)

    def mlp(x, pre):
        i = 0
        while f"{pre}.layers.{i}.fc.weight" in p:
            x = x @ p[f"{pre}.layers.{i}.fc.weight"].T + p[f"{pre}.layers.{i}.fc.bias"]
            x = np.maximum(bn(x, f"{pre}.layers.{i}.bn"), 0.0)
            i += 1
        return x @ p[f"{pre}.fc.weight"].T + p[f"{pre}.fc.bias"]

    lam, v = np.asarray(lam, np.float64), np.asarray(v, np.float64)
    n_psi = len({k.split(".")[1] for k in p if k.startswith("psi_list.")})
    z = np.stack([mlp(lam[:, :, None], f"psi_list.{ell}")[..., 0] for ell in range(n_psi)], axis=2)  # [B, D, M]
    offs = np.concatenate([[0], np.cumsum(n_node)])
    n_max = int(max(n_node))
    w = np.zeros((offs[-1], n_max, n_psi))                                                          # [N_sum, N_max, M]
    col_mask = np.zeros((offs[-1], n_max))
    for b, n in enumerate(n_node):
        vb = v[offs[b]:offs[b + 1]]
        w[offs[b]:offs[b + 1], :n] = np.einsum("nd,md,dl->nml", vb, vb, z[b])
        col_mask[offs[b]:offs[b + 1], :n] = 1.0
    adj = np.zeros((offs[-1], offs[-1]))
    np.add.at(adj, (edge_index[1], edge_index[0]), 1.0)  # flow source -> target, sum aggregation
    x, k = w, 0
    while f"phi.gin.layers.{k}.eps" in p:
        x = mlp((1.0 + p[f"phi.gin.layers.{k}.eps"][0]) * x + np.einsum("vu,ujl->vjl", adj, x),
                f"phi.gin.layers.{k}.mlp")
        k += 1
    return (x * col_mask[..., None]).sum(1)


def _sub_reference(fx, which, *, train):
    """The official forward on the sub-batch ``which`` of the fixture graphs, in the official padded layout (D = 8)."""
    g, lam, vec, _ = _fixture_graphs(fx, which)
    d_pe = fx["Lambda"].shape[1]
    lam_pad = np.zeros((len(which), d_pe), np.float32)
    v_pad = np.zeros((int(np.sum(g.n_node)), d_pe), np.float32)
    offs = np.concatenate([[0], np.cumsum(g.n_node)])
    for b in range(len(which)):
        lam_pad[b, :len(lam[b])] = lam[b]
        v_pad[offs[b]:offs[b + 1], :lam[b].shape[0]] = vec[b]
    p = {k[len("param/"):]: x for k, x in fx.items() if k.startswith("param/")}
    return _official_reference(p, lam_pad, v_pad, np.stack([g.senders, g.receivers]), g.n_node, train=train)


# ----------------------------------------------------------------------------------------------- given eigenpairs
def test_given_eigenpairs_are_used_verbatim():
    """Arbitrary (not even orthonormal) pairs, ``d_b <= n_b``, stored as given; graph part as without them."""
    rng = np.random.default_rng(0)
    sizes = [4, 6, 1, 5]
    g = _random_graphs(rng, sizes)
    d = [3, 6, 1, 0]
    lam = [rng.normal(size=db).astype(np.float32) for db in d]
    vec = [rng.normal(size=(n, db)).astype(np.float32) for n, db in zip(sizes, d)]
    batch = spe.make_graph_batch(g, max_nodes=7, max_edges=40, k=9, eigvals=lam, eigvecs=vec)
    assert batch.eigvals.shape == (4, 9) and batch.eigvecs.shape == (4, 7, 9) and batch.eigvals.dtype == np.float32
    for b, (n, db) in enumerate(zip(sizes, d)):
        np.testing.assert_array_equal(batch.eigvals[b, :db], lam[b])
        np.testing.assert_array_equal(batch.eigvecs[b, :n, :db], vec[b])
        assert batch.eig_mask[b].tolist() == [True] * db + [False] * (9 - db)
        assert not batch.eigvals[b, db:].any() and not batch.eigvecs[b, :, db:].any()
        assert not batch.eigvecs[b, n:].any()
    computed = spe.make_graph_batch(g, max_nodes=7, max_edges=40, k=9)
    for x, y in zip(jax.tree.leaves((computed.graphs, computed.node_mask, computed.edge_mask)),
                    jax.tree.leaves((batch.graphs, batch.node_mask, batch.edge_mask)), strict=True):
        np.testing.assert_array_equal(x, y)
    # float64 output dtype: the given values are cast, not recomputed
    b64 = spe.make_graph_batch(g, max_nodes=7, max_edges=40, k=9, eigvals=lam, eigvecs=vec, dtype=np.float64)
    assert b64.eigvecs.dtype == np.float64
    np.testing.assert_array_equal(b64.eigvals[0, :3], lam[0].astype(np.float64))


def test_given_computed_eigenpairs_round_trip():
    """Feeding a batch's own eigenpairs back in rebuilds the same batch (per-graph ``[d_b]`` / ``[n_b, d_b]``)."""
    rng = np.random.default_rng(1)
    sizes = [5, 3, 6]
    g = _random_graphs(rng, sizes)
    ref = spe.make_graph_batch(g, max_nodes=6, max_edges=40, k=4)
    d = ref.eig_mask.sum(1)
    lam = [ref.eigvals[b, :d[b]] for b in range(3)]
    vec = [ref.eigvecs[b, :n, :d[b]] for b, n in enumerate(sizes)]
    again = spe.make_graph_batch(g, max_nodes=6, max_edges=40, k=4, eigvals=lam, eigvecs=vec)
    for x, y in zip(jax.tree.leaves(ref), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(x, y)


def test_computed_k_beyond_max_nodes_is_zero_padding_of_k_equal_max_nodes():
    rng = np.random.default_rng(2)
    g = _random_graphs(rng, [4, 6, 3])
    a = spe.make_graph_batch(g, max_nodes=6, max_edges=40, k=6)
    b = spe.make_graph_batch(g, max_nodes=6, max_edges=40, k=10)
    assert b.eigvals.shape == (3, 10) and b.eigvecs.shape == (3, 6, 10)
    np.testing.assert_array_equal(b.eigvals[:, :6], a.eigvals)
    np.testing.assert_array_equal(b.eigvecs[:, :, :6], a.eigvecs)
    np.testing.assert_array_equal(b.eig_mask[:, :6], a.eig_mask)
    assert not b.eigvals[:, 6:].any() and not b.eigvecs[:, :, 6:].any() and not b.eig_mask[:, 6:].any()
    # take_graph_batch and the regressor (LapPE width = k, SPE) work on the padded eigen axis under jit
    took = spe.take_graph_batch(b, [2, 0, 2])
    assert took.eigvecs.shape == (3, 6, 10)
    for kind in (spe.PEKind.LAPPE, spe.PEKind.SPE):
        model = spe.PEGraphRegressor(kind, n_node_types=5, n_edge_types=3, n_eigs=10, hidden=8, n_layers=1,
                                     n_mlp_layers=2, pe_dims=4, n_phi=2, phi_hidden=4, rho_layers=1, rho_hidden=8,
                                     rngs=nnx.Rngs(0))
        y = nnx.jit(lambda m, x: m(x))(model, took)
        assert y.shape == (3,) and np.all(np.isfinite(y))


# ----------------------------------------------------------------------------------------------- official semantics
def test_numpy_transcription_of_the_official_forward_matches_the_fixture(fx):
    """The train-mode reference below is trusted because it reproduces the official PEs stored in the fixture."""
    p = {k[len("param/"):]: x for k, x in fx.items() if k.startswith("param/")}
    n_node = fx["n_node"].astype(int)
    for mode in ("eval", "train"):
        pe = _official_reference(p, fx["Lambda"], fx["V"], fx["edge_index"], n_node, train=mode == "train")
        np.testing.assert_allclose(pe, fx[f"pe_{mode}"], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("source", ["given", "computed"])
def test_k_beyond_max_nodes_eval_mode_matches_official_outputs(fx, source):
    """Graphs 0 and 1 of the fixture (6 and 5 nodes) with the official D = 8 > max_nodes = 6: eval-mode PE = the
    official PE stored in the fixture (eval mode does not depend on the batch), with the official eigenpairs given
    verbatim or recomputed by eigenkit (basis invariance: C_6 has repeated eigenvalues)."""
    g, lam, vec, rows = _fixture_graphs(fx, [0, 1])
    d_pe = fx["Lambda"].shape[1]
    extra = dict(eigvals=lam, eigvecs=vec) if source == "given" else {}
    batch = spe.make_graph_batch(g, max_nodes=6, max_edges=int(g.n_edge.max()), k=d_pe, **extra)
    assert batch.eigvecs.shape == (2, 6, 8) and batch.eig_mask.sum(1).tolist() == [6, 5]
    model = _spe_model(fx, spe.BatchNormMode.OFFICIAL)
    model.eval()
    np.testing.assert_allclose(_pe(model, batch), fx["pe_eval"][rows], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("source", ["given", "computed"])
def test_k_beyond_max_nodes_train_mode_matches_official_convention(fx, source):
    """Train mode, ``BatchNormMode.OFFICIAL``: padding the eigen axis to the official D = 8 > max_nodes = 6 gives
    the official train-mode PE; ``k = max_nodes`` (what was possible before) does not, because φ's BatchNorm then
    sees 12 instead of 16 eigenvalue slots. ``BatchNormMode.MASKED`` gives the same PE for both widths."""
    g, lam, vec, _ = _fixture_graphs(fx, [0, 1])
    extra = dict(eigvals=lam, eigvecs=vec) if source == "given" else {}
    ref = _sub_reference(fx, [0, 1], train=True)
    e = int(g.n_edge.max())
    wide = spe.make_graph_batch(g, max_nodes=6, max_edges=e, k=8, **extra)
    narrow = spe.make_graph_batch(g, max_nodes=6, max_edges=e, k=6, **extra)
    np.testing.assert_allclose(_pe(_spe_model(fx, spe.BatchNormMode.OFFICIAL), wide), ref, rtol=2e-4, atol=2e-5)
    assert not np.allclose(_pe(_spe_model(fx, spe.BatchNormMode.OFFICIAL), narrow), ref, atol=1e-3)
    np.testing.assert_allclose(_pe(_spe_model(fx, spe.BatchNormMode.MASKED), wide),
                               _pe(_spe_model(fx, spe.BatchNormMode.MASKED), narrow), rtol=2e-4, atol=2e-5)


# ----------------------------------------------------------------------------------------------- errors
def test_bad_eigenpairs_give_clear_errors():
    rng = np.random.default_rng(3)
    sizes = [4, 5]
    g = _random_graphs(rng, sizes)
    kw = dict(max_nodes=6, max_edges=40)
    lam = [np.zeros(4, np.float32), np.zeros(3, np.float32)]
    vec = [np.zeros((4, 4), np.float32), np.zeros((5, 3), np.float32)]
    with pytest.raises(ValueError, match="eigvals and eigvecs must be given together"):
        spe.make_graph_batch(g, **kw, eigvals=lam)
    with pytest.raises(ValueError, match=r"eigvals must hold one array per graph \(G = 2\), got 1"):
        spe.make_graph_batch(g, **kw, eigvals=lam[:1], eigvecs=vec)
    with pytest.raises(ValueError, match=r"eigvecs must be a sequence of one array per graph \(G = 2\), got int"):
        spe.make_graph_batch(g, **kw, eigvals=lam, eigvecs=3)
    with pytest.raises(ValueError, match=r"eigvals\[1\] must have shape \(d_1,\).*got \(3, 1\)"):
        spe.make_graph_batch(g, **kw, eigvals=[lam[0], lam[1][:, None]], eigvecs=vec)
    with pytest.raises(ValueError, match=r"eigvecs\[1\] must have shape \(n_1, d_1\) = \(5, 3\).*got \(5, 2\)"):
        spe.make_graph_batch(g, **kw, eigvals=lam, eigvecs=[vec[0], vec[1][:, :2]])
    with pytest.raises(ValueError, match=r"graph 0 has 4 nodes but 5 eigenpairs were given; at most min\(n_0, k\) = 4"):
        spe.make_graph_batch(g, **kw, eigvals=[np.zeros(5), lam[1]], eigvecs=[np.zeros((4, 5)), vec[1]])
    with pytest.raises(ValueError, match=r"at most min\(n_0, k\) = 2"):
        spe.make_graph_batch(g, **kw, k=2, eigvals=lam, eigvecs=vec)
    with pytest.raises(ValueError, match=r"eigvecs\[0\] contains NaN/Inf"):
        spe.make_graph_batch(g, **kw, eigvals=lam, eigvecs=[np.full((4, 4), np.nan), vec[1]])
    with pytest.raises(ValueError, match=r"eigvals\[1\] must be real"):
        spe.make_graph_batch(g, **kw, eigvals=[lam[0], lam[1] + 1j], eigvecs=vec)
    with pytest.raises(ValueError, match="k must be a Python int >= 1"):
        spe.make_graph_batch(g, **kw, k=0)
