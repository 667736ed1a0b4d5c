"""ZINC raw files (torch tensor pickles) read without torch: graphs, targets, the 12k index subset, the restricted
unpickler, and the errors for missing files. The replica is written opcode by opcode (``tests/zinc_replica.py``)."""

import pickle
import pickletools
import sys

import numpy as np
import pytest
import zinc_replica as rep

from eigenkit.data import MissingDataError, MoleculeGraphs, read_torch_pickle, zinc


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EIGENKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EIGENKIT_ZINC", raising=False)


@pytest.fixture
def replica(tmp_path):
    rng = np.random.default_rng(0)
    splits = {"train": rep.random_molecules(7, rng), "val": rep.random_molecules(4, rng),
              "test": rep.random_molecules(3, rng)}
    index = {"train": [5, 0, 3], "val": [2, 1], "test": [0, 2]}
    for s, mols in splits.items():
        rep.write_split(tmp_path / "zinc" / "raw", s, mols, index[s])
    return tmp_path / "zinc", splits, index


def test_encoder_matches_cpython_pickler():
    """The replica's opcodes are CPython's (memo puts aside), so the stream has the real files' structure."""
    for proto in (2, 3):
        for x in [rep.MAGIC, 1001, rep.SYS_INFO, ["94571234567890"], {"num_atom": 3, "a": [1.5, (2, -3, 70000)]}]:
            assert rep.dumps(x, proto) == pickletools.optimize(pickle.dumps(x, protocol=proto))
    blob = rep.legacy_storage_bytes(np.arange(3, dtype=np.int64))
    assert blob.endswith(np.array([3, 0, 1, 2], "<i8").tobytes())


def test_graphs_targets_and_subset(replica):
    root, splits, index = replica
    for split, mols in splits.items():
        for subset in (True, False):
            got = zinc(split, root=root, subset=subset)
            want = [mols[i] for i in index[split]] if subset else mols
            assert isinstance(got, MoleculeGraphs) and len(got) == len(want)
            np.testing.assert_allclose(got.y, [y for _, _, y in want], rtol=1e-6)
            assert got.n_node.tolist() == [len(a) for a, _, _ in want]
            no, eo = got.node_offsets, got.edge_offsets
            for m, (atoms, adj, _) in enumerate(want):
                np.testing.assert_array_equal(got.node_type[no[m]:no[m + 1]], atoms)
                s, r = np.nonzero(adj)  # PyG: adj.nonzero() in row-major order
                sl = slice(eo[m], eo[m + 1])
                np.testing.assert_array_equal(got.senders[sl], s)
                np.testing.assert_array_equal(got.receivers[sl], r)
                np.testing.assert_array_equal(got.edge_type[sl], adj[s, r])
            assert got.node_type.dtype == got.senders.dtype == got.edge_type.dtype == np.int32
            assert got.y.dtype == np.float32
    assert "torch" not in sys.modules
    g = zinc("val", root=root).to_jraph()
    assert g.n_node.shape == (2,) and int(g.senders.max()) < int(g.n_node.sum())


def test_layouts_env_and_cache(replica, tmp_path, monkeypatch):
    root, splits, _ = replica
    a = zinc("test", root=root / "raw")  # the folder itself
    monkeypatch.setenv("EIGENKIT_ZINC", str(root))
    b = zinc("test")
    np.testing.assert_array_equal(a.y, b.y)
    mols = rep.random_molecules(3, np.random.default_rng(5))
    rep.write_split(tmp_path / "other" / "molecules", "test", mols, [1])  # benchmarking-gnns' folder name
    c = zinc("test", root=tmp_path / "other")
    np.testing.assert_allclose(c.y, [mols[1][2]], rtol=1e-6)
    rep.write_split(tmp_path / "other" / "molecules", "test", mols, [2])  # a changed file is re-read, not cached
    np.testing.assert_allclose(zinc("test", root=tmp_path / "other").y, [mols[2][2]], rtol=1e-6)


def test_strided_and_offset_tensors(tmp_path):
    """Tensors that are views (transposed strides, storage offsets) decode like torch's ``as_strided``."""
    base = np.arange(12, dtype=np.int64).reshape(3, 4)
    t = rep.tensor(base, offset=2, storage_extra=3)
    t.args = (t.args[0], 2, (4, 3), (1, 4), False, t.args[5])  # the transpose of base inside the storage
    path = tmp_path / "t.pickle"
    path.write_bytes(rep.dumps([t, rep.tensor(np.float64(2.5))], 3))
    x, s = read_torch_pickle(path)
    np.testing.assert_array_equal(x.numpy(), base.T)
    assert s.numpy().shape == () and float(s.numpy()) == 2.5
    bad = rep.tensor(base)
    bad.args = (bad.args[0], 0, (3, 4), (4, 2), False, bad.args[5])  # would read past the storage
    path.write_bytes(rep.dumps([bad], 3))
    with pytest.raises(ValueError, match="reaches element"):
        read_torch_pickle(path)[0].numpy()


def test_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(rep.dumps([rep.Reduce(rep.Global("os", "system"), ("echo pwned",))], 3))
    with pytest.raises(pickle.UnpicklingError, match="refusing global os.system"):
        read_torch_pickle(path)
    inner = rep.dumps(rep.Reduce(rep.Global("builtins", "eval"), ("1",)), 2)
    blob = rep.dumps(rep.MAGIC, 2) + rep.dumps(1001, 2) + rep.dumps(rep.SYS_INFO, 2) + inner
    path.write_bytes(rep.dumps([rep.Reduce(rep.Global("torch.storage", "_load_from_bytes"), (blob,))], 3))
    with pytest.raises(pickle.UnpicklingError, match="refusing global builtins.eval"):
        read_torch_pickle(path)[0].array()
    path.write_bytes(pickle.dumps([np.zeros(2)]))  # a NumPy pickle names numpy globals: refused too
    with pytest.raises(pickle.UnpicklingError, match="refusing global numpy"):
        read_torch_pickle(path)


def test_missing_files_and_bad_split(replica, tmp_path):
    root, _, _ = replica
    with pytest.raises(MissingDataError, match="EIGENKIT_ZINC.*train.pickle and train.index"):
        zinc("train")
    with pytest.raises(MissingDataError, match=r"val.pickle not found.*molecules.zip"):
        zinc("val", root=tmp_path / "nowhere")
    (root / "raw" / "val.index").unlink()
    with pytest.raises(MissingDataError, match="val.index not found"):
        zinc("val", root=root)
    assert len(zinc("val", root=root, subset=False)) == 4
    with pytest.raises(ValueError, match="split must be one of"):
        zinc("valid", root=root)
    (root / "raw" / "test.index").write_text("0,9\n")
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\)"):
        zinc("test", root=root)
