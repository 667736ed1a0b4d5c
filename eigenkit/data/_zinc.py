"""ZINC (Irwin et al. 2012; Gómez-Bombarelli et al. 2018) molecular graphs from the user's copy, read without torch.

The layout is the raw one ``torch_geometric.datasets.ZINC`` reads (and Graph-COM/SPE's ``zinc/dataset.py``, a copy
of it): the ``molecules/`` folder of benchmarking-gnns' ``molecules.zip`` (Dwivedi et al. 2020), which PyG renames
to ``<root>/raw/``:

* ``{train,val,test}.pickle`` — a Python list with one dict per molecule: ``atom_type`` (torch ``LongTensor [n]``,
  indices into :data:`ZINC_ATOM_TYPES`), ``bond_type`` (``LongTensor [n, n]``, the dense bond-type matrix, 0 = no
  bond, 1/2/3 = single/double/triple), ``logP_SA_cycle_normalized`` (the standardised penalised logP, a 1-element
  float tensor) and ``num_atom``;
* ``{train,val,test}.index`` — one comma-separated line of molecule indices: the 10,000 / 1,000 / 1,000 molecules of
  the ZINC-12k subset (``subset=True``).

The pickles hold **torch tensors**. A plain ``pickle.load`` would import torch and execute whatever globals the file
names; instead :func:`read_torch_pickle` runs a restricted unpickler that maps exactly the globals torch's tensor
pickling uses to NumPy builders and refuses every other one:

* a tensor pickles (``torch/_tensor.py``, ``Tensor.__reduce_ex__``) as ``torch._utils._rebuild_tensor_v2(storage,
  storage_offset, size, stride, requires_grad, OrderedDict())`` (``_rebuild_tensor`` without the last two in
  torch 0.3; ``torch._tensor._rebuild_from_type_v2`` around it for subclasses; ``_rebuild_parameter`` for
  parameters);
* its storage pickles (``torch/storage.py``, ``__reduce__``) as ``torch.storage._load_from_bytes(b)``, ``b`` a
  complete *legacy* ``torch.save`` stream: the pickled magic number ``0x1950a86a20f9469cfc6c``, protocol version
  1001 and a ``sys_info`` dict, then the storage as a persistent id ``("storage", torch.<Type>Storage, key,
  location, numel, view_metadata)``, the pickled list of storage keys, and per key an ``int64`` element count
  followed by the raw little-endian elements (``torch/serialization.py``, ``_legacy_save``).

Decoding is lazy (only the molecules of the requested split / subset are decoded) and the result is cached as
``.npz`` under :func:`eigenkit.data.cache_dir`, keyed by the files' paths, sizes and modification times.
"""

from __future__ import annotations

import collections
import io
import os
import pathlib
import pickle
import struct

import numpy as np

from eigenkit.data._common import MissingDataError, cached_arrays
from eigenkit.data._molecules import MoleculeGraphs

__all__ = ["ZINC_ATOM_TYPES", "ZINC_BOND_TYPES", "read_torch_pickle", "zinc"]

#: ZINC's 28 node labels (benchmarking-gnns issue 42; PyG's ZINC README): element, explicit H count, charge.
ZINC_ATOM_TYPES = ("C", "O", "N", "F", "C H1", "S", "Cl", "O -", "N H1 +", "Br", "N H3 +", "N H2 +", "N +", "N -",
                   "S -", "I", "P", "O H1 +", "N H1 -", "O +", "S +", "P H1", "P H2", "C H2 -", "P +", "S H1 +",
                   "C H1 -", "P H1 +")
#: ZINC's bond labels 1..3 (0 = "NONE", no bond; the edge table of a GINE has ``len + 1`` rows).
ZINC_BOND_TYPES = ("single", "double", "triple")

SPLITS = ("train", "val", "test")
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_TARGET = "logP_SA_cycle_normalized"

#: torch's legacy storage classes → NumPy dtypes (BFloat16 is decoded by hand).
_STORAGE_DTYPES = {"DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "LongStorage": "i8",
                   "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "b1", "BFloat16Storage": "u2"}


class _StorageType:
    """Stand-in for ``torch.<Type>Storage`` (only its name is used: it fixes the element dtype)."""

    def __init__(self, name: str):
        self.name = name
        self.code = _STORAGE_DTYPES[name]


class _TensorType:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` inside ``_rebuild_from_type_v2``."""


def _decode_legacy_storage(blob: bytes) -> np.ndarray:
    """A legacy ``torch.save`` stream of one storage → its elements as a 1-D NumPy array (native byte order)."""
    f = io.BytesIO(blob)
    header = [_InnerUnpickler(f).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL or not isinstance(header[2], dict):
        raise pickle.UnpicklingError("storage bytes are not a legacy torch.save stream (bad magic number / protocol "
                                     f"{header[1]!r})")
    order = "<" if header[2].get("little_endian", True) else ">"
    inner = _InnerUnpickler(f)
    ref = inner.load()
    keys = _InnerUnpickler(f).load()
    arrays = {}
    for key in keys:
        if key not in inner.storages:
            raise pickle.UnpicklingError(f"storage key {key!r} listed but never referenced")
        stype, numel = inner.storages[key]
        raw = f.read(8)
        if len(raw) != 8:
            raise pickle.UnpicklingError("truncated storage stream (missing element count)")
        (count,) = struct.unpack(order + "q", raw)
        if count != numel:
            raise pickle.UnpicklingError(f"storage {key!r}: header says {numel} elements, data says {count}")
        dtype = np.dtype(order + stype.code)
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key!r}: truncated data ({len(data)} of "
                                         f"{count * dtype.itemsize} bytes)")
        arr = np.frombuffer(data, dtype).astype(dtype.newbyteorder("="))
        if stype.name == "BFloat16Storage":  # the upper 16 bits of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        arrays[key] = arr
    if not isinstance(ref, tuple) or ref[0] not in arrays:
        raise pickle.UnpicklingError("the storage stream holds no storage")
    key, view = ref
    arr = arrays[key]
    if view is not None:  # old torch: a view (view_key, offset, size) of a root storage, offsets in elements
        _, offset, size = view
        if not (0 <= offset and offset + size <= arr.shape[0]):
            raise pickle.UnpicklingError(f"storage view [{offset}, {offset + size}) outside its root of {len(arr)}")
        arr = arr[offset:offset + size]
    return arr


class _InnerUnpickler(pickle.Unpickler):
    """The pickle stream inside ``_load_from_bytes``: only ``torch.<Type>Storage`` globals and storage ids."""

    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, tuple[_StorageType, int]] = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name} inside a torch storage stream")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80} (only torch storages are read)")
        _, stype, key, _location, numel, view = pid
        self.storages.setdefault(str(key), (stype, int(numel)))
        if view is not None and not (isinstance(view, tuple) and len(view) == 3):
            raise pickle.UnpicklingError(f"bad storage view metadata {view!r:.80}")
        return (str(key), view)


class _LazyStorage:
    """``torch.storage._load_from_bytes(blob)``: decoded on first use."""

    def __init__(self, blob):
        if not isinstance(blob, bytes | bytearray):
            raise pickle.UnpicklingError(f"_load_from_bytes expects bytes, got {type(blob).__name__}")
        self._blob = bytes(blob)
        self._array = None

    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = _decode_legacy_storage(self._blob)
            self._blob = b""
        return self._array


class TorchTensorData:
    """A tensor of a torch pickle, not yet decoded: ``numpy()`` gives the array (a copy, C order).

    Attributes:
      shape: the tensor's size.
    """

    def __init__(self, storage: _LazyStorage, offset: int, shape, stride):
        if not isinstance(storage, _LazyStorage):
            raise pickle.UnpicklingError(f"tensor storage must come from _load_from_bytes, got {type(storage)}")
        self._storage, self._offset = storage, int(offset)
        self.shape, self._stride = tuple(int(s) for s in shape), tuple(int(s) for s in stride)
        if len(self.shape) != len(self._stride) or min(self.shape + self._stride + (self._offset,), default=0) < 0:
            raise pickle.UnpicklingError(f"bad tensor geometry: size {self.shape}, stride {self._stride}, "
                                         f"offset {self._offset}")

    def numpy(self) -> np.ndarray:
        flat = self._storage.array()
        if 0 in self.shape:
            return np.zeros(self.shape, flat.dtype)
        last = self._offset + sum((n - 1) * s for n, s in zip(self.shape, self._stride))
        if last >= flat.shape[0]:  # never read outside the storage
            raise ValueError(f"tensor of size {self.shape}, stride {self._stride}, offset {self._offset} reaches "
                             f"element {last} of a storage of {flat.shape[0]}")
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self._offset:], self.shape, [s * item for s in self._stride],
                                               writeable=False)
        return np.array(view, order="C")

    def __repr__(self) -> str:
        return f"TorchTensorData(shape={self.shape})"


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    del requires_grad, backward_hooks, metadata
    return TorchTensorData(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return TorchTensorData(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    del requires_grad, backward_hooks
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter) or not isinstance(new_type, _TensorType):
        raise pickle.UnpicklingError("_rebuild_from_type_v2 is only read for plain tensors")
    if state:
        raise pickle.UnpicklingError("tensor subclasses with Python state are not read")
    return func(*args)


def _latin1_encode(text, encoding="latin1"):  # protocol-2 pickles store bytes as _codecs.encode(str, "latin1")
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode only read with latin1, got {encoding!r}")
    return text.encode("latin1")


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.storage", "_load_from_bytes"): _LazyStorage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}


class _TorchFreeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if (module, name) in (("torch", "Tensor"), ("torch.nn.parameter", "Parameter")):
            return _TensorType()
        raise pickle.UnpicklingError(f"refusing global {module}.{name}: only torch tensor pickles are read "
                                     "(torch._utils._rebuild_tensor_v2, torch.storage._load_from_bytes, "
                                     "collections.OrderedDict)")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids outside torch storage streams are not read (is this a "
                                     "torch.save file rather than a pickle of tensors?)")


def read_torch_pickle(path: str | os.PathLike):
    """Unpickle a file of plain Python containers and torch tensors **without torch** and without running any other
    global: tensors come back as :class:`TorchTensorData` (call ``.numpy()``).

    Args:
      path: the pickle (e.g. ZINC's ``train.pickle``).

    Raises:
      pickle.UnpicklingError: the file names a global other than the few of torch's tensor pickling (the message
        names it), or a storage stream is malformed.

    Example:
      >>> mols = read_torch_pickle("molecules/val.pickle")        # doctest: +SKIP
      >>> mols[0]["bond_type"].numpy().shape                       # doctest: +SKIP
      (23, 23)
    """
    with open(path, "rb") as f:
        return _TorchFreeUnpickler(f).load()


def _as_array(value, what: str) -> np.ndarray:
    if isinstance(value, TorchTensorData):
        return value.numpy()
    if isinstance(value, np.ndarray | list | tuple | int | float):
        return np.asarray(value)
    raise ValueError(f"{what} must be a tensor, got {type(value).__name__}")


def _raw_dir(root: pathlib.Path, split: str) -> pathlib.Path | None:
    for d in (root, root / "raw", root / "molecules"):
        if (d / f"{split}.pickle").exists():
            return d
    return None


def _read_index(path: pathlib.Path, n: int) -> np.ndarray:
    text = path.read_text()
    try:
        idx = np.array([int(x) for x in text.replace("\n", ",").split(",") if x.strip()], np.int64)
    except ValueError as err:
        raise ValueError(f"{path}: expected comma-separated molecule indices") from err
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"{path}: indices must lie in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return idx


def _molecules(mols, index, where: str) -> MoleculeGraphs:
    if not isinstance(mols, list):
        raise ValueError(f"{where}: expected a list of molecule dicts, got {type(mols).__name__}")
    atoms, bonds, ys = [], [], []
    for i in index:
        mol = mols[int(i)]
        if not isinstance(mol, dict) or not {"atom_type", "bond_type", _TARGET} <= set(mol):
            raise ValueError(f"{where}: molecule {i} must be a dict with atom_type, bond_type and {_TARGET}")
        a = _as_array(mol["atom_type"], f"{where}: molecule {i} atom_type").reshape(-1)
        b = _as_array(mol["bond_type"], f"{where}: molecule {i} bond_type")
        y = _as_array(mol[_TARGET], f"{where}: molecule {i} {_TARGET}").reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= len(ZINC_ATOM_TYPES)):
            raise ValueError(f"{where}: molecule {i} has atom types outside 0..{len(ZINC_ATOM_TYPES) - 1}")
        if b.size and (b.min() < 0 or b.max() > len(ZINC_BOND_TYPES)):
            raise ValueError(f"{where}: molecule {i} has bond types outside 0..{len(ZINC_BOND_TYPES)}")
        if y.size != 1:
            raise ValueError(f"{where}: molecule {i} {_TARGET} must hold one value, got {y.size}")
        atoms.append(a)
        bonds.append(b)
        ys.append(float(y[0]))
    return MoleculeGraphs.from_dense_bonds(atoms, bonds, np.array(ys, np.float32))


def zinc(split: str = "train", *, root: str | os.PathLike | None = None, subset: bool = True) -> MoleculeGraphs:
    """ZINC molecules of one split, as read by ``torch_geometric.datasets.ZINC(root, subset, split)``.

    Nodes are atoms typed by :data:`ZINC_ATOM_TYPES` (28), edges the nonzero entries of the dense bond matrix in
    row-major order, both directions (PyG's ``adj.nonzero()``), typed 1..3 (:data:`ZINC_BOND_TYPES`); the target is
    ``logP_SA_cycle_normalized``. ZINC-12k (``subset=True``): 10,000 / 1,000 / 1,000 molecules of 9–37 atoms.

    Args:
      split: ``"train"``, ``"val"`` or ``"test"``.
      root: the folder with ``{split}.pickle`` (+ ``{split}.index``), or a PyG root whose ``raw/`` (or
        ``molecules/``) holds them; default ``$EIGENKIT_ZINC``.
      subset: ZINC-12k (the molecules listed in ``{split}.index``, in that order) instead of all of ZINC (220,011 /
        24,445 / 5,000).

    Returns:
      A :class:`MoleculeGraphs` (``smiles`` are empty strings: the files have none).

    Raises:
      MissingDataError: no root given, or the files are absent (the message names them).
      pickle.UnpicklingError: the pickle names a global other than torch's tensor pickling.
      ValueError: unknown split, malformed molecules or index file.

    Example:
      >>> test = zinc("test", root="/data/zinc")           # doctest: +SKIP
      >>> len(test), int(test.n_node.max())                 # doctest: +SKIP
      (1000, 37)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    files = f"{split}.pickle" + (f" and {split}.index" if subset else "")
    layout = ("the raw ZINC layout torch_geometric.datasets.ZINC reads: the molecules/ folder of benchmarking-gnns' "
              "molecules.zip (PyG's <root>/raw/) with {train,val,test}.pickle and {train,val,test}.index")
    env = os.environ.get("EIGENKIT_ZINC")
    if root is None and not env:
        raise MissingDataError(f"ZINC: no data folder given. Pass root= (config.data_dir) or set EIGENKIT_ZINC to "
                               f"the folder holding {files} ({layout}).")
    source = "the root argument" if root is not None else f"EIGENKIT_ZINC={env}"
    base = pathlib.Path(root if root is not None else env).expanduser()
    raw = _raw_dir(base, split)
    if raw is None:
        raise MissingDataError(f"ZINC: {split}.pickle not found in {base}, {base / 'raw'} or {base / 'molecules'} "
                               f"(folder from {source}). Expected {layout}. Processed PyG .pt files need torch and "
                               "are not read.")
    pickle_path, index_path = raw / f"{split}.pickle", raw / f"{split}.index"
    if subset and not index_path.exists():
        raise MissingDataError(f"ZINC: {index_path} not found (folder from {source}); the 12k subset needs the "
                               f"benchmarking-gnns split file {split}.index beside {split}.pickle, or pass "
                               "subset=False for all of ZINC.")
    stamp = [pickle_path] + ([index_path] if subset else [])
    key = "zinc-v1|" + "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in stamp)

    def build() -> dict[str, np.ndarray]:
        mols = read_torch_pickle(pickle_path)
        n = len(mols) if isinstance(mols, list) else 0
        index = _read_index(index_path, n) if subset else np.arange(n)
        return _molecules(mols, index, str(pickle_path)).arrays()

    arrays = cached_arrays(f"zinc_{'subset' if subset else 'full'}_{split}", build, key=key)
    return MoleculeGraphs(**arrays)
