"""A ZINC raw-format replica (benchmarking-gnns ``molecules/{split}.pickle`` + ``{split}.index``) written without torch.

The pickle stream is emitted opcode by opcode with the structure torch gives a pickled tensor (``torch/_tensor.py``
``Tensor.__reduce_ex__`` → ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
collections.OrderedDict())``; ``torch/storage.py`` ``__reduce__`` → ``torch.storage._load_from_bytes(bytes)``, whose
bytes are a legacy ``torch.save`` stream, ``torch/serialization.py`` ``_legacy_save``: magic number, protocol 1001,
``sys_info``, the storage as persistent id ``("storage", torch.LongStorage, key, "cpu", numel, None)``, the key list,
then ``int64`` numel + raw little-endian data). The inner stream uses pickle protocol 2 (torch's
``DEFAULT_PROTOCOL``), the outer protocol 3 (Python 3's ``pickle.dump`` default before 3.8), as the real files.
Memo opcodes (``BINPUT``) are left out: they change no value (``pickletools.optimize`` drops the unused ones too).
"""

from __future__ import annotations

import pathlib
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE = {np.dtype(np.int64): "LongStorage", np.dtype(np.float32): "FloatStorage",
            np.dtype(np.float64): "DoubleStorage"}


class Global:
    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Reduce:
    def __init__(self, func: Global, args: tuple):
        self.func, self.args = func, args


class PersistentId:
    def __init__(self, pid):
        self.pid = pid


def emit(obj, out: bytearray, protocol: int) -> None:
    """Append the pickle opcodes of ``obj`` (None/bool/int/float/str/bytes/tuple/list/dict/Global/Reduce/PersistentId),
    choosing opcodes as CPython's pickler does at ``protocol`` (2 or 3)."""
    if obj is None:
        out += b"N"
    elif obj is True or obj is False:
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, int):
        if 0 <= obj < 256:
            out += b"K" + bytes([obj])
        elif 0 <= obj < 65536:
            out += b"M" + struct.pack("<H", obj)
        elif -(2 ** 31) <= obj < 2 ** 31:
            out += b"J" + struct.pack("<i", obj)
        else:
            enc = pickle.encode_long(obj)
            out += b"\x8a" + bytes([len(enc)]) + enc
    elif isinstance(obj, float):
        out += b"G" + struct.pack(">d", obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        out += b"X" + struct.pack("<I", len(data)) + data
    elif isinstance(obj, bytes):
        assert protocol >= 3, "bytes need protocol 3 (BINBYTES)"
        out += (b"C" + bytes([len(obj)]) if len(obj) < 256 else b"B" + struct.pack("<I", len(obj))) + obj
    elif isinstance(obj, tuple):
        if not obj:
            out += b")"
        elif len(obj) <= 3:
            for x in obj:
                emit(x, out, protocol)
            out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(obj)]
        else:
            out += b"("
            for x in obj:
                emit(x, out, protocol)
            out += b"t"
    elif isinstance(obj, list):
        out += b"]"
        if len(obj) == 1:
            emit(obj[0], out, protocol)
            out += b"a"
        elif obj:
            out += b"("
            for x in obj:
                emit(x, out, protocol)
            out += b"e"
    elif isinstance(obj, dict):
        out += b"}"
        if len(obj) == 1:
            (k, v), = obj.items()
            emit(k, out, protocol)
            emit(v, out, protocol)
            out += b"s"
        elif obj:
            out += b"("
            for k, v in obj.items():
                emit(k, out, protocol)
                emit(v, out, protocol)
            out += b"u"
    elif isinstance(obj, Global):
        out += b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
    elif isinstance(obj, Reduce):
        emit(obj.func, out, protocol)
        emit(obj.args, out, protocol)
        out += b"R"
    elif isinstance(obj, PersistentId):
        emit(obj.pid, out, protocol)
        out += b"Q"
    else:
        raise TypeError(type(obj))


def dumps(obj, protocol: int) -> bytes:
    out = bytearray(b"\x80" + bytes([protocol]))
    emit(obj, out, protocol)
    return bytes(out + b".")


SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_storage_bytes(flat: np.ndarray, key: str = "94571234567890") -> bytes:
    """``torch.save(storage, f, _use_new_zipfile_serialization=False)`` of a 1-D array's storage."""
    flat = np.ascontiguousarray(flat)
    stype = Global("torch", _STORAGE[flat.dtype])
    out = dumps(MAGIC, 2) + dumps(1001, 2) + dumps(SYS_INFO, 2)
    out += dumps(PersistentId(("storage", stype, key, "cpu", int(flat.size), None)), 2)
    out += dumps([key], 2)
    return out + struct.pack("<q", flat.size) + flat.astype(flat.dtype.newbyteorder("<")).tobytes()


def tensor(arr, *, storage_extra: int = 0, offset: int = 0) -> Reduce:
    """The reduce tuple of ``torch.from_numpy(arr)`` (C-contiguous); ``storage_extra`` / ``offset`` put the tensor
    inside a larger storage, as a view would be."""
    arr = np.asarray(arr)
    flat = np.concatenate([np.zeros(offset, arr.dtype), arr.reshape(-1), np.zeros(storage_extra, arr.dtype)])
    stride = tuple(int(s // arr.itemsize) for s in np.zeros(arr.shape, arr.dtype).strides) if arr.ndim else ()
    storage = Reduce(Global("torch.storage", "_load_from_bytes"), (legacy_storage_bytes(flat),))
    hooks = Reduce(Global("collections", "OrderedDict"), ())
    return Reduce(Global("torch._utils", "_rebuild_tensor_v2"),
                  (storage, offset, tuple(int(s) for s in arr.shape), stride, False, hooks))


def random_molecules(n: int, rng: np.random.Generator, *, min_atoms: int = 3, max_atoms: int = 9):
    """``n`` random connected molecules: ``(atom_type [k], bond_type [k, k], y)`` (a random tree plus a ring bond)."""
    mols = []
    for _ in range(n):
        k = int(rng.integers(min_atoms, max_atoms + 1))
        adj = np.zeros((k, k), np.int64)
        for v in range(1, k):
            u = int(rng.integers(0, v))
            adj[u, v] = adj[v, u] = int(rng.integers(1, 4))
        if k >= 4:
            adj[0, k - 1] = adj[k - 1, 0] = 1
        mols.append((rng.integers(0, 28, size=k).astype(np.int64), adj, float(rng.normal())))
    return mols


def write_split(directory, split: str, mols, index=None) -> pathlib.Path:
    """``directory/{split}.pickle`` (a list of benchmarking-gnns molecule dicts) and, with ``index``,
    ``directory/{split}.index`` (one comma-separated line, newline-terminated)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    records = [{"num_atom": len(a), "atom_type": tensor(a), "bond_type": tensor(b),
                "logP_SA_cycle_normalized": tensor(np.array([y], np.float32))} for a, b, y in mols]
    (directory / f"{split}.pickle").write_bytes(dumps(records, 3))
    if index is not None:
        (directory / f"{split}.index").write_text(",".join(str(int(i)) for i in index) + "\n")
    return directory / f"{split}.pickle"
