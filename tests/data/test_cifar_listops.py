"""CIFAR-10 pickle reader (restricted unpickler) and LRA ListOps reader / tokeniser / generator, on tiny replicas
written in tmp_path."""

import pickle
import statistics

import numpy as np
import pytest

from eigenkit import data
from eigenkit.data import MissingDataError


def _raw_batch(path, rows, labels):
    """A CIFAR batch written by hand (not by cifar10_write_batch): the official dict layout, protocol 2."""
    d = {b"batch_label": b"training batch", b"labels": list(labels), b"data": rows,
         b"filenames": [b"x.png"] * len(labels)}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def _cifar_dir(tmp_path, n_per_batch=2, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = {}
    for name in [*data._cifar.CIFAR10_TRAIN_FILES, "test_batch"]:
        n = n_test if name == "test_batch" else n_per_batch
        rows[name] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
        _raw_batch(tmp_path / name, *rows[name])
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in data.CIFAR10_CLASSES], b"num_vis": 3072}, f, protocol=2)
    return rows


def test_cifar10_reads_the_python_pickles(tmp_path):
    rows = _cifar_dir(tmp_path)
    x, y = data.cifar10("train", root=tmp_path)
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    want = np.concatenate([rows[f][0] for f in data._cifar.CIFAR10_TRAIN_FILES])
    # row layout: 1024 red (row-major 32 x 32), then 1024 green, then 1024 blue values
    np.testing.assert_array_equal(x[:, 0, 0, 0], want[:, 0])
    np.testing.assert_array_equal(x[:, 0, 1, 1], want[:, 1024 + 1])
    np.testing.assert_array_equal(x[:, 1, 0, 2], want[:, 2048 + 32])
    np.testing.assert_array_equal(x[..., 1].reshape(10, -1), want[:, 1024:2048])
    assert y.tolist() == sum((rows[f][1] for f in data._cifar.CIFAR10_TRAIN_FILES), [])
    xt, yt = data.cifar10("test", root=tmp_path)
    assert xt.shape == (3, 32, 32, 3) and yt.tolist() == rows["test_batch"][1]
    # the writer round-trips
    data.cifar10_write_batch(tmp_path / "test_batch", xt[::-1], yt[::-1])
    x2, y2 = data.cifar10("test", root=tmp_path)
    np.testing.assert_array_equal(x2, xt[::-1])
    np.testing.assert_array_equal(y2, yt[::-1])


def test_cifar10_missing_files_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("EIGENKIT_CIFAR10", raising=False)
    with pytest.raises(MissingDataError, match="data_batch_1.*test_batch.*batches.meta"):
        data.cifar10("train")
    with pytest.raises(MissingDataError, match=r"root argument; missing data_batch_1, data_batch_2"):
        data.cifar10("train", root=tmp_path)
    _cifar_dir(tmp_path)
    monkeypatch.setenv("EIGENKIT_CIFAR10", str(tmp_path))
    assert data.cifar10("test")[0].shape == (3, 32, 32, 3)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(MissingDataError, match=f"EIGENKIT_CIFAR10={tmp_path}"):
        data.cifar10("test")
    with pytest.raises(ValueError, match="split must be one of"):
        data.cifar10("val", root=tmp_path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar10_unpickler_rejects_other_globals(tmp_path):
    _cifar_dir(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        data.cifar10("test", root=tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match="uint8"):
        data.cifar10("test", root=tmp_path)


# -- ListOps --------------------------------------------------------------------------------------------------------
def _evaluate(tokens):
    """Independent evaluator: a stack machine over the parenthesis-free tokens (statistics.median for MED)."""
    stack, result = [], None
    for t in tokens:
        if t.startswith("["):
            stack.append((t, []))
            continue
        if t == "]":
            op, args = stack.pop()
            v = {"[MAX": max, "[MIN": min, "[SM": lambda a: sum(a) % 10,
                 "[MED": lambda a: int(statistics.median(a))}[op](args)
        else:
            v = int(t)
        if stack:
            stack[-1][1].append(v)
        else:
            result = v
    assert not stack
    return result


def test_listops_tsv_tokenised_as_the_official_code(tmp_path):
    lines = ["Source\tTarget", "( ( ( [MAX 2 ) 9 ) ] )\t9",
             "( ( ( ( [SM ( ( ( [MIN 4 ) 1 ) ] ) ) 7 ) 5 ) ] )\t3", "( ( ( [MED 1 ) 8 ) ] )\t4"]
    (tmp_path / "basic_val.tsv").write_text("\r\n".join(lines) + "\r\n")  # csv.writer's line ends, as LRA wrote
    tokens, lengths, labels = data.listops("val", root=tmp_path, l_max=12)
    v = {t: i for i, t in enumerate(data.LISTOPS_VOCAB)}
    assert len(data.LISTOPS_VOCAB) == 18 and v["<pad>"] == 0  # the official "actual size 18"
    assert tokens.shape == (3, 12) and tokens.dtype == np.int32 and lengths.dtype == np.int32
    np.testing.assert_array_equal(tokens[0, :5], [v["[MAX"], v["2"], v["9"], v["]"], v["<eos>"]])
    assert lengths.tolist() == [5, 9, 5] and (tokens[0, 5:] == 0).all()
    assert labels.tolist() == [9, 3, 4]
    for line, t, n in zip(lines[1:], tokens, lengths):
        src = line.split("\t")[0]
        assert [data.LISTOPS_VOCAB[i] for i in t[: n - 1]] == src.replace("(", "").replace(")", "").split()
        assert _evaluate(data.listops_tokenize(src)) == int(line.split("\t")[1])
    # truncation keeps room for <eos>
    tok, lens, _ = data.listops("val", root=tmp_path, l_max=4)
    assert lens.tolist() == [4, 4, 4] and (tok[:, -1] == v["<eos>"]).all()
    with pytest.raises(MissingDataError, match="basic_train.tsv"):
        data.listops("train", root=tmp_path)
    (tmp_path / "basic_test.tsv").write_text("src\ttgt\n1\t1\n")
    with pytest.raises(ValueError, match="header"):
        data.listops("test", root=tmp_path)


def test_listops_generator_labels_match_an_independent_evaluator(tmp_path):
    src, y = data.listops_generate(300, seed=1, max_depth=5, max_args=6, min_length=8, max_length=80)
    assert len(src) == len(set(src)) == 300 and y.dtype == np.int32
    ops = set()
    for s, label in zip(src, y):
        toks = data.listops_tokenize(s)
        assert 8 < len(toks) < 80 and s.count("(") == s.count(")")
        assert _evaluate(toks) == label
        ops.update(t for t in toks if t.startswith("["))
    assert ops == {"[MAX", "[MIN", "[MED", "[SM"} and len(set(y.tolist())) > 5
    # seeded; written and read back as LRA TSV
    src2, y2 = data.listops_generate(300, seed=1, max_depth=5, max_args=6, min_length=8, max_length=80)
    assert src2 == src and (y2 == y).all()
    data.listops_write_tsv(tmp_path / "basic_train.tsv", src, y)
    assert (tmp_path / "basic_train.tsv").read_text().startswith("Source\tTarget")
    tokens, lengths, labels = data.listops("train", root=tmp_path, l_max=96)
    want = data.listops_encode(src, y, l_max=96)
    for a, b in zip((tokens, lengths, labels), want):
        np.testing.assert_array_equal(a, b)


def test_listops_generator_lra_lengths_and_errors():
    src, y = data.listops_generate(4, seed=0)  # LRA defaults: 500 < length < 2000, depth 10, 10 args
    assert all(500 < len(data.listops_tokenize(s)) < 2000 for s in src)
    assert [_evaluate(data.listops_tokenize(s)) for s in src] == y.tolist()
    with pytest.raises(ValueError, match="widen the lengths"):
        data.listops_generate(2, seed=0, max_depth=2, max_args=3, min_length=50, max_length=60)
    with pytest.raises(ValueError, match="min_length"):
        data.listops_generate(2, seed=0, min_length=10, max_length=5)
