"""Plain-text corpora, GLUE TSV files and the word vocabulary (eigenkit.data._words), on tiny replicas."""

import numpy as np
import pytest

from eigenkit.data import MissingDataError, WordVocab, read_glue, read_text_lines, word_tokens


def _write_glue(root, sst=(("a fine film", 1), ("dull and slow", 0)), qnli=(("who ?", "nobody .", "entailment"),)):
    (root / "SST-2").mkdir(parents=True)
    (root / "QNLI").mkdir(parents=True)
    for split in ("train", "dev"):
        (root / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in sst))
        (root / "QNLI" / f"{split}.tsv").write_text(
            "index\tquestion\tsentence\tlabel\n" + "".join(f"{i}\t{q}\t{s}\t{y}\n" for i, (q, s, y) in enumerate(qnli)))


def test_read_glue_both_tasks(tmp_path):
    _write_glue(tmp_path)
    texts, y = read_glue(tmp_path, "sst2", "train")
    assert texts == [("a fine film",), ("dull and slow",)] and y.tolist() == [1, 0] and y.dtype == np.int32
    texts, y = read_glue(tmp_path, "qnli", "dev")
    assert texts == [("who ?", "nobody .")] and y.tolist() == [1]


def test_read_glue_errors(tmp_path):
    with pytest.raises(MissingDataError, match="glue_dir"):
        read_glue(tmp_path, "sst2", "train")
    _write_glue(tmp_path)
    with pytest.raises(ValueError, match="task must be one of"):
        read_glue(tmp_path, "mnli", "train")
    with pytest.raises(ValueError, match="unlabelled"):
        read_glue(tmp_path, "sst2", "test")
    (tmp_path / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nok\tmaybe\n")
    with pytest.raises(ValueError, match=r"label 'maybe' is not one of"):
        read_glue(tmp_path, "sst2", "dev")
    (tmp_path / "SST-2" / "dev.tsv").write_text("text\tlabel\nok\t1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sentence'\]"):
        read_glue(tmp_path, "sst2", "dev")


def test_read_text_lines(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("one line\n\n  \nsecond line here\nx\n")
    assert read_text_lines(p) == ["one line", "second line here", "x"]
    assert read_text_lines(p, max_lines=1) == ["one line"]
    assert read_text_lines(p, min_chars=2) == ["one line", "second line here"]
    with pytest.raises(MissingDataError, match="corpus"):
        read_text_lines(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="no line"):
        read_text_lines(p, min_chars=100)


def test_vocab_encode_pairs_truncation_and_unknowns():
    assert word_tokens("It's   Mr. Knightley!") == ["it's", "mr", ".", "knightley", "!"]
    v = WordVocab.build(["b b b b a a c", "a"], 2)
    assert v.words[4:] == ["b", "a"] and len(v) == 6  # by frequency (b 4, a 3); c is cut
    ids, mask = v.encode([("a z", "c"), "b b b b b b b"], 4)
    assert ids.tolist() == [[5, WordVocab.UNK, WordVocab.SEP, WordVocab.UNK], [4, 4, 4, 4]]
    assert mask.all() and ids.dtype == np.int32
    ids, mask = v.encode([""], 3)
    assert ids.tolist() == [[0, 0, 0]] and not mask.any()
    with pytest.raises(ValueError, match="size"):
        WordVocab.build(["a"], 0)
    with pytest.raises(ValueError, match="length"):
        v.encode(["a"], 0)
    with pytest.raises(ValueError, match="distinct"):
        WordVocab(["[MASK]"])
