"""ZINC-style molecular graph regression built offline from MOSES SMILES with RDKit.

Source: MOSES (Polykovskiy et al. 2020, PyPI ``molsets`` 0.3.1, MIT), a ZINC Clean-Leads subset of 1.58M molecules
with 8–26 heavy atoms; read from the installed package's ``dataset/data/train.csv.gz`` without importing ``moses``
(which imports torch). Each molecule becomes a graph:

* nodes: heavy atoms; type = element, with a separate type for aromatic atoms (``ATOM_TYPES``; unknown → ``other``);
* edges: bonds of the Kekulé form, both directions, type 1 = single, 2 = double, 3 = triple (as ZINC-12k);
* target: penalised logP = Crippen logP − SA score (RDKit ``Contrib/SA_Score``, Ertl & Schuffenhauer 2009) −
  max(largest ring size − 6, 0), the ZINC-12k target definition (Jin et al. 2018; Dwivedi et al. 2020). Whether
  ZINC-12k standardises the three terms is not verified — the numbers are **not comparable** to ZINC-12k MAEs.

A fixed, seeded random sample of MOSES *train* molecules is split into disjoint train/val/test sets (default
10,000 / 1,000 / 1,000, the size of ZINC-12k) and cached as ``.npz`` under :func:`eigenkit.data.cache_dir`.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import sys

import numpy as np

from eigenkit.data._common import MissingDataError, cached_arrays, find_package_dir

__all__ = ["ATOM_TYPES", "BOND_TYPES", "MoleculeGraphs", "moses_penalized_logp", "molecules_from_smiles"]

#: Node types: element symbol, lower case = aromatic atom; the last entry collects everything else.
ATOM_TYPES = ("C", "c", "N", "n", "O", "o", "S", "s", "F", "Cl", "Br", "I", "P", "other")
#: Edge types (1-based; 0 is reserved for "no bond / padding").
BOND_TYPES = ("single", "double", "triple")

_MOSES_HINT = "pip install --no-deps molsets==0.3.1"
_RDKIT_HINT = "pip install rdkit==2026.9.1"


@dataclasses.dataclass(frozen=True)
class MoleculeGraphs:
    """A set of molecular graphs in flat (concatenated) numpy form.

    Attributes:
      smiles: ``[M]`` SMILES strings (empty for sources without them, e.g. ZINC).
      n_node, n_edge: ``int32 [M]`` heavy atoms and directed edges (2 × bonds) per molecule.
      node_type: ``int32 [sum n_node]`` indices into the source's atom vocabulary (MOSES: ``ATOM_TYPES``; ZINC:
        ``ZINC_ATOM_TYPES``).
      senders, receivers: ``int32 [sum n_edge]`` *local* node indices (0 .. n_node − 1 within each molecule).
      edge_type: ``int32 [sum n_edge]`` in 1..3 (``BOND_TYPES``; ZINC: ``ZINC_BOND_TYPES``, the same three).
      y: ``float32 [M]`` penalised logP (ZINC: the normalised ``logP_SA_cycle_normalized``).
    """

    smiles: np.ndarray
    n_node: np.ndarray
    n_edge: np.ndarray
    node_type: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    edge_type: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.n_node.shape[0])

    @classmethod
    def from_dense_bonds(cls, node_types, bond_types, y, *, smiles=None) -> MoleculeGraphs:
        """Molecules given as atom-type vectors and dense bond-type matrices (the ZINC / benchmarking-gnns layout).

        Edges are the nonzero entries of each bond matrix in row-major order, ``senders`` = row, ``receivers`` =
        column, ``edge_type`` = the entry: exactly PyG's ``adj.nonzero().t()`` in ``torch_geometric.datasets.ZINC``
        (a symmetric matrix gives both directions of every bond).

        Args:
          node_types: ``M`` integer arrays ``[n_i]`` (indices into the source's atom vocabulary).
          bond_types: ``M`` integer arrays ``[n_i, n_i]``, 0 = no bond, ``1..`` = bond type.
          y: ``[M]`` targets.
          smiles: optional ``[M]`` strings (default empty strings: the source has none).

        Raises:
          ValueError: lengths differ, or a bond matrix is not ``[n_i, n_i]`` (the message names molecule ``i``).
        """
        node_types, bond_types = list(node_types), list(bond_types)
        y = np.asarray(y, np.float32).reshape(-1)
        if not len(node_types) == len(bond_types) == len(y):
            raise ValueError(f"node_types, bond_types and y must have one entry per molecule, got {len(node_types)}, "
                             f"{len(bond_types)}, {len(y)}")
        n_node, n_edge, nt, snd, rcv, et = [], [], [], [], [], []
        for i, (atoms, adj) in enumerate(zip(node_types, bond_types)):
            atoms, adj = np.asarray(atoms).reshape(-1), np.asarray(adj)
            if adj.shape != (len(atoms), len(atoms)):
                raise ValueError(f"molecule {i}: bond_types must be [{len(atoms)}, {len(atoms)}] (one row per atom), "
                                 f"got shape {adj.shape}")
            s_, r_ = np.nonzero(adj)
            n_node.append(len(atoms))
            n_edge.append(len(s_))
            nt.append(atoms)
            snd.append(s_)
            rcv.append(r_)
            et.append(adj[s_, r_])
        i32 = np.int32

        def cat(parts):
            return np.concatenate(parts).astype(i32) if parts else np.zeros(0, i32)

        names = np.array([""] * len(y) if smiles is None else [str(s) for s in smiles], dtype=str)
        return cls(names, np.array(n_node, i32), np.array(n_edge, i32), cat(nt), cat(snd), cat(rcv), cat(et), y)

    @property
    def node_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_node)]).astype(np.int64)

    @property
    def edge_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_edge)]).astype(np.int64)

    def subset(self, index) -> MoleculeGraphs:
        """The molecules ``index`` (int array), in that order."""
        index = np.asarray(index, np.int64)
        no, eo = self.node_offsets, self.edge_offsets
        nodes = np.concatenate([np.arange(no[i], no[i + 1]) for i in index]) if len(index) else np.zeros(0, int)
        edges = np.concatenate([np.arange(eo[i], eo[i + 1]) for i in index]) if len(index) else np.zeros(0, int)
        return MoleculeGraphs(self.smiles[index], self.n_node[index], self.n_edge[index], self.node_type[nodes],
                              self.senders[edges], self.receivers[edges], self.edge_type[edges], self.y[index])

    def to_jraph(self, index=None):
        """A ``jraph.GraphsTuple`` of the molecules ``index`` (default all), global node indices, no padding:
        ``nodes`` = atom types ``[N]``, ``edges`` = bond types ``[E]``, ``globals`` = targets ``[G]``."""
        import jraph

        sub = self if index is None else self.subset(index)
        shift = np.repeat(sub.node_offsets[:-1], sub.n_edge).astype(np.int32)
        return jraph.GraphsTuple(nodes=sub.node_type, edges=sub.edge_type, senders=sub.senders + shift,
                                 receivers=sub.receivers + shift, n_node=sub.n_node, n_edge=sub.n_edge,
                                 globals=sub.y)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _import_rdkit():
    try:
        chem = importlib.import_module("rdkit.Chem")
        crippen = importlib.import_module("rdkit.Chem.Crippen")
        rdconfig = importlib.import_module("rdkit.RDConfig")
        rdbase = importlib.import_module("rdkit.RDLogger")
    except ImportError as err:  # pragma: no cover - exercised only without rdkit
        raise MissingDataError(f"RDKit is needed to build molecular graphs. Install it with: {_RDKIT_HINT}") from err
    rdbase.DisableLog("rdApp.*")
    sa_dir = str(rdconfig.RDContribDir) + "/SA_Score"
    if sa_dir not in sys.path:
        sys.path.append(sa_dir)
    try:
        sascorer = importlib.import_module("sascorer")
    except ImportError as err:  # pragma: no cover
        raise MissingDataError(f"RDKit's Contrib/SA_Score was not found under {sa_dir}; reinstall: {_RDKIT_HINT}") \
            from err
    return chem, crippen, sascorer


def molecules_from_smiles(smiles, *, skip_invalid: bool = True) -> MoleculeGraphs:
    """SMILES → :class:`MoleculeGraphs` with penalised-logP targets (needs RDKit).

    Args:
      smiles: iterable of SMILES strings.
      skip_invalid: drop SMILES RDKit cannot parse/kekulise (else raise ``ValueError``); molecules with a single
        heavy atom are kept (they are graphs with no edges).

    Example:
      >>> mols = molecules_from_smiles(["CCO", "c1ccccc1"])   # doctest: +SKIP
      >>> mols.n_node.tolist(), mols.n_edge.tolist()           # doctest: +SKIP
      ([3, 6], [4, 12])
    """
    chem, crippen, sascorer = _import_rdkit()
    atom_index = {a: i for i, a in enumerate(ATOM_TYPES)}
    bond_index = {chem.BondType.SINGLE: 1, chem.BondType.DOUBLE: 2, chem.BondType.TRIPLE: 3}
    kept, n_node, n_edge, nt, snd, rcv, et, ys = [], [], [], [], [], [], [], []
    for s in smiles:
        mol = chem.MolFromSmiles(str(s))
        if mol is None or mol.GetNumAtoms() == 0:
            if skip_invalid:
                continue
            raise ValueError(f"invalid SMILES {s!r}")
        aromatic = [a.GetIsAromatic() for a in mol.GetAtoms()]
        logp = crippen.MolLogP(mol)
        sa = sascorer.calculateScore(mol)
        rings = [len(r) for r in mol.GetRingInfo().AtomRings()]
        ring_penalty = max(max(rings, default=0) - 6, 0)
        kek = chem.Mol(mol)
        try:
            chem.Kekulize(kek, clearAromaticFlags=True)
        except Exception as err:  # noqa: BLE001 - rdkit raises its own exception types
            if skip_invalid:
                continue
            raise ValueError(f"cannot kekulise {s!r}") from err
        types = []
        for atom, aro in zip(kek.GetAtoms(), aromatic):
            sym = atom.GetSymbol()
            key = sym.lower() if aro and len(sym) == 1 else sym
            types.append(atom_index.get(key, atom_index["other"]))
        s_, r_, t_ = [], [], []
        for bond in kek.GetBonds():
            i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            t = bond_index.get(bond.GetBondType(), 1)
            s_ += [i, j]
            r_ += [j, i]
            t_ += [t, t]
        kept.append(str(s))
        n_node.append(len(types))
        n_edge.append(len(s_))
        nt += types
        snd += s_
        rcv += r_
        et += t_
        ys.append(logp - sa - ring_penalty)
    i32 = np.int32
    return MoleculeGraphs(np.array(kept, dtype=str), np.array(n_node, i32), np.array(n_edge, i32),
                          np.array(nt, i32), np.array(snd, i32), np.array(rcv, i32), np.array(et, i32),
                          np.array(ys, np.float32))


def _moses_train_csv():
    pkg = find_package_dir("moses", install_hint=_MOSES_HINT)
    path = pkg / "dataset" / "data" / "train.csv.gz"
    if not path.exists():
        raise MissingDataError(f"{path} not found; reinstall MOSES with: {_MOSES_HINT}")
    return path


def _read_smiles(path) -> list[str]:
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        col = header.index("SMILES") if "SMILES" in header else 0
        return [line.rstrip("\n").split(",")[col] for line in f]


def moses_penalized_logp(split: str = "train", *, n_train: int = 10_000, n_val: int = 1_000, n_test: int = 1_000,
                         seed: int = 0) -> MoleculeGraphs:
    """A seeded ZINC-12k-sized sample of MOSES molecules with penalised-logP targets (cached after the first build).

    The sample is ``n_train + n_val + n_test`` distinct molecules drawn with ``numpy.random.default_rng(seed)`` from
    the MOSES train file and cut in that order; the split is a pure function of ``(sizes, seed)``.

    Args:
      split: ``"train"``, ``"val"`` or ``"test"``.
      n_train, n_val, n_test: split sizes.
      seed: sampling seed.

    Raises:
      MissingDataError: ``molsets`` or ``rdkit`` is not installed (the message says what to pip install).
      ValueError: unknown split.
    """
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    if split not in sizes:
        raise ValueError(f"split must be one of {tuple(sizes)}, got {split!r}")
    path = _moses_train_csv()
    _import_rdkit()  # fail early with the install hint

    def build() -> dict[str, np.ndarray]:
        smiles = _read_smiles(path)
        total = n_train + n_val + n_test
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(smiles), size=min(len(smiles), int(total * 1.02) + 16), replace=False)
        mols = molecules_from_smiles([smiles[i] for i in pick])
        if len(mols) < total:
            raise ValueError(f"only {len(mols)} valid molecules, {total} requested")
        out = {}
        start = 0
        for name, size in sizes.items():
            for k, v in mols.subset(np.arange(start, start + size)).arrays().items():
                out[f"{name}/{k}"] = v
            start += size
        return out

    key = f"moses-plogp-v1|{n_train},{n_val},{n_test}|{seed}|{path.stat().st_size}|{ATOM_TYPES}"
    arrays = cached_arrays("moses_penalized_logp", build, key=key)
    fields = [f.name for f in dataclasses.fields(MoleculeGraphs)]
    return MoleculeGraphs(**{f: arrays[f"{split}/{f}"] for f in fields})
