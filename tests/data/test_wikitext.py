"""WikiText-2 readers on a replica folder, the official calibration draw (``random.seed``) and perplexity windows."""

import random

import numpy as np
import pytest

from eigenkit.data import (
    MissingDataError,
    c4_calibration,
    token_windows,
    wikitext2_calibration,
    wikitext2_root,
    wikitext2_rows,
    wikitext2_text,
)

TEST_RAW = " \n = Robert Boulter = \n \n Robert Boulter is an English actor .\n\n = = Career = = \n"


def replica(root, nested=False):
    d = root / "wikitext-2-raw" if nested else root
    d.mkdir(parents=True, exist_ok=True)
    (d / "wiki.test.raw").write_text(TEST_RAW, encoding="utf-8")
    (d / "wiki.train.raw").write_text(" \n = Valkyria = \n" + " Senjō no Valkyria 3 .\n" * 5, encoding="utf-8")
    (d / "wiki.valid.raw").write_text(" \n = Homarus = \n", encoding="utf-8")
    return d


def test_rows_and_joined_text_as_the_hf_dataset(tmp_path):
    replica(tmp_path)
    rows = wikitext2_rows("test", tmp_path)
    # one row per line with its newline, blank lines (also whitespace-only ones) as ""
    assert rows == ["", " = Robert Boulter = \n", "", " Robert Boulter is an English actor .\n", "",
                    " = = Career = = \n"]
    assert wikitext2_text("test", tmp_path) == "\n\n".join(rows)
    assert wikitext2_rows("validation", tmp_path) == wikitext2_rows("valid", tmp_path) == ["", " = Homarus = \n"]
    assert "Senjō" in wikitext2_text("train", tmp_path)
    with pytest.raises(ValueError, match="split"):
        wikitext2_rows("dev", tmp_path)


def test_root_layouts_and_missing_data(tmp_path, monkeypatch):
    d = replica(tmp_path / "a", nested=True)
    assert wikitext2_root(tmp_path / "a") == d
    monkeypatch.setenv("EIGENKIT_WIKITEXT2", str(d))
    assert wikitext2_root() == d
    monkeypatch.delenv("EIGENKIT_WIKITEXT2")
    with pytest.raises(MissingDataError, match="wiki.train.raw"):
        wikitext2_root()
    with pytest.raises(MissingDataError, match=r"wiki\.test\.raw.*wikitext-2-raw-v1\.zip"):
        wikitext2_root(tmp_path / "empty")
    (d / "wiki.train.raw").unlink()
    with pytest.raises(MissingDataError, match="wiki.train.raw"):
        wikitext2_rows("train", d)
    # the Hugging Face parquet layout is recognised; without pyarrow the error says what to do
    pq = tmp_path / "hf" / "wikitext-2-raw-v1"
    pq.mkdir(parents=True)
    (pq / "test-00000-of-00001.parquet").write_bytes(b"PAR1")
    assert wikitext2_root(tmp_path / "hf") == pq
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDataError, match="pyarrow"):
            wikitext2_rows("test", pq)


def test_calibration_draw_is_the_official_random_seed_draw():
    tokens = np.arange(1000, 1500)
    for seed in (0, 1):  # the compressor's set (seed) and EoRA's (seed + 1)
        random.seed(seed)  # get_wikitext2: random.seed(seed); i = random.randint(0, N - seqlen - 1) per sample
        starts = [random.randint(0, len(tokens) - 32 - 1) for _ in range(7)]
        got = wikitext2_calibration(tokens, 7, 32, seed=seed)
        assert got.shape == (7, 32) and got.dtype == np.int32
        np.testing.assert_array_equal(got, np.stack([tokens[i:i + 32] for i in starts]))
    assert not np.array_equal(wikitext2_calibration(tokens, 4, 32, seed=0), wikitext2_calibration(tokens, 4, 32,
                                                                                                  seed=1))
    assert wikitext2_calibration(np.arange(5), 3, 4, seed=0).tolist() == [[0, 1, 2, 3]] * 3  # N = seq_len + 1
    with pytest.raises(ValueError, match="seq_len"):
        wikitext2_calibration(np.arange(4), 1, 4, seed=0)


def test_perplexity_windows_drop_the_tail():
    w = token_windows(np.arange(10), 4)  # llama_eval: nsamples = numel // seqlen
    assert w.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert token_windows(np.arange(3), 4).shape == (0, 4)
    with pytest.raises(ValueError, match="1-D integer"):
        token_windows(np.zeros((2, 2), np.int32), 2)


def test_c4_calibration_redraws_short_documents():
    docs = ["a", "b c d e f g h i j", "k"]

    def tok(s):
        return [ord(c) for c in s.split()[0]] * len(s.split())

    random.seed(3)
    want = []
    for _ in range(4):
        while True:
            ids = tok(docs[random.randint(0, 2)])
            if len(ids) > 5:
                break
        i = random.randint(0, len(ids) - 5 - 1)
        want.append(ids[i:i + 5])
    np.testing.assert_array_equal(c4_calibration(docs, tok, 4, 5, seed=3), np.array(want))
    with pytest.raises(ValueError, match="no document"):
        c4_calibration(["a"], tok, 1, 5, seed=0, max_tries=10)
