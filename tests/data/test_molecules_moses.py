"""MOSES / RDKit molecular graphs with penalised-logP targets (eigenkit.data._molecules)."""

import importlib.util

import numpy as np
import pytest

from eigenkit.data import MissingDataError
from eigenkit.data import _molecules as mol

HAVE_RDKIT = importlib.util.find_spec("rdkit") is not None
HAVE_MOSES = importlib.util.find_spec("moses") is not None
needs_rdkit = pytest.mark.skipif(not HAVE_RDKIT, reason="needs rdkit: pip install rdkit==2026.9.1")
needs_moses = pytest.mark.skipif(not (HAVE_RDKIT and HAVE_MOSES),
                                 reason="needs molsets + rdkit: pip install --no-deps molsets==0.3.1 rdkit==2026.9.1")

SMILES = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "C#N", "C1CCCCCCCC1", "O=C(O)c1ccccc1O", "CCN(CC)CC",
          "Clc1ccc(Br)cc1", "C", "CC(C)(C)c1ccc(S)cc1", "FC(F)(F)c1ccncc1", "not_a_smiles", "N#CC#N",
          "c1ccc2ccccc2c1", "OCC(O)CO", "CSC", "C=CC=C", "c1ccoc1", "c1ccsc1", "CC(=O)OC1=CC=CC=C1C(=O)O", "CI"]


@pytest.mark.needs_data
@needs_rdkit
def test_molecules_from_smiles_graphs_and_target():
    from rdkit import Chem
    from rdkit.Chem import Crippen

    m = mol.molecules_from_smiles(SMILES)
    assert len(m) == len(SMILES) - 1  # the invalid SMILES is skipped
    with pytest.raises(ValueError, match="invalid SMILES"):
        mol.molecules_from_smiles(["not_a_smiles"], skip_invalid=False)
    i = list(m.smiles).index("c1ccccc1")
    sub = m.subset([i])
    assert sub.n_node.tolist() == [6] and sub.n_edge.tolist() == [12]
    assert set(sub.node_type.tolist()) == {mol.ATOM_TYPES.index("c")}
    assert sorted(np.bincount(sub.edge_type).tolist()) == [0, 6, 6]  # Kekulé: 3 single + 3 double bonds, x2
    # undirected: every edge appears in both directions with the same type
    pairs = {(s, r, t) for s, r, t in zip(sub.senders, sub.receivers, sub.edge_type)}
    assert all((r, s, t) in pairs for s, r, t in pairs)
    # methane: one node, no edges (a graph with no edges is kept)
    j = list(m.smiles).index("C")
    assert m.subset([j]).n_edge.tolist() == [0]
    # cyclononane: ring penalty 9 - 6 = 3; target = logP - SA - 3
    k = list(m.smiles).index("C1CCCCCCCC1")
    logp = Crippen.MolLogP(Chem.MolFromSmiles("C1CCCCCCCC1"))
    sa = logp - 3.0 - float(m.y[k])
    assert 1.0 <= sa <= 10.0  # the SA score is on its 1..10 scale
    # jraph view round trip: global indices, per-graph counts
    g = m.to_jraph([i, k])
    assert g.n_node.tolist() == [6, 9] and int(g.senders.max()) < 15 and int(g.senders[12:].min()) >= 6


@pytest.mark.needs_data
@needs_moses
def test_moses_split_is_seeded_disjoint_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EIGENKIT_CACHE", str(tmp_path))
    kw = dict(n_train=12, n_val=4, n_test=4, seed=3)
    tr, va, te = (mol.moses_penalized_logp(s, **kw) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (12, 4, 4)
    assert not set(tr.smiles) & set(te.smiles) and not set(tr.smiles) & set(va.smiles)
    assert 8 <= tr.n_node.min() and tr.n_node.max() <= 26  # MOSES heavy-atom range
    assert list(tmp_path.glob("moses_penalized_logp-*.npz"))
    again = mol.moses_penalized_logp("train", **kw)  # from the cache
    np.testing.assert_array_equal(again.y, tr.y)
    with pytest.raises(ValueError, match="split must be one of"):
        mol.moses_penalized_logp("dev", **kw)


def test_missing_package_error_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moses" else real(name, *a))
    with pytest.raises(MissingDataError, match=r"pip install --no-deps molsets==0\.3\.1"):
        mol.moses_penalized_logp("train", n_train=2, n_val=1, n_test=1)
