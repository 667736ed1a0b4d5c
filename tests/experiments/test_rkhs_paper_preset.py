"""The RKHS paper preset (MLM on a wikipedia-simple text file, probes on GLUE SST-2 / QNLI TSVs) runs its own code
path on a tiny replica of those formats, the encoder shrunk by overrides (width 16, 1 layer, batch 8 for the tests'
8 fake devices); every other key — bfloat16 compute, BERT + MLM, both GLUE tasks, the GLUE dev split as test —
stays as the preset sets it."""

import math

import numpy as np
import pytest

from experiments.__main__ import apply_overrides
from experiments.rkhs import text, train
from experiments.rkhs.configs import cpu, paper

WORDS = [f"w{i}" for i in range(40)]


def _sentence(rng, n):
    return " ".join(rng.choice(WORDS, n))


@pytest.fixture
def replica(tmp_path):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "simplewiki.txt"
    corpus.write_text("".join(_sentence(rng, int(rng.integers(8, 30))) + "\n" for _ in range(300)))
    glue = tmp_path / "glue"
    (glue / "SST-2").mkdir(parents=True)
    (glue / "QNLI").mkdir(parents=True)
    for split, n in (("train", 60), ("dev", 16)):
        (glue / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(
            f"{_sentence(rng, 6)}\t{i % 2}\n" for i in range(n)))
        (glue / "QNLI" / f"{split}.tsv").write_text("index\tquestion\tsentence\tlabel\n" + "".join(
            f"{i}\t{_sentence(rng, 4)} ?\t{_sentence(rng, 6)} .\t{('entailment', 'not_entailment')[i % 2]}\n"
            for i in range(n)))
    return corpus, glue


def test_paper_preset_is_the_mlm_glue_setting():
    c = paper.get_config()
    assert (c.task, c.source, tuple(c.tasks), c.encoder, c.objective) == ("text", "glue", ("sst2", "qnli"), "bert",
                                                                         "mlm")
    assert (c.hidden, c.num_layers, c.num_heads, c.intermediate, c.length) == (1024, 24, 16, 4096, 128)
    assert c.compute_dtype == "bfloat16" and c.checkpoint_every > 0 and c.n_train_per_class == 0
    assert c.expected_device and c.expected_memory and c.expected_runtime
    assert "--config.corpus=" in paper.__doc__ and "--config.glue_dir=" in paper.__doc__
    assert "task" not in cpu.get_config() and "task" not in text.get_config("cpu")  # the cube and study keep theirs


def test_paper_preset_needs_the_users_files(tmp_path):
    with pytest.raises(ValueError, match="--config.corpus=FILE"):
        train.train_and_evaluate(paper.get_config(), str(tmp_path / "w"))


def test_paper_code_path_on_a_tiny_replica(replica, tmp_path):
    corpus, glue = replica
    c = paper.get_config()
    apply_overrides(c, [f"--config.corpus={corpus}", f"--config.glue_dir={glue}"])
    c.update(dict(length=16, vocab_size=30, alphas=(0.15,), hidden=16, num_layers=1, num_heads=2, intermediate=32,
                  batch_size=8, num_steps=2, warmup_steps=1, log_every=1, n_avg=2, embed_batch=16, n_ref=64,
                  kappa_points=8, kappa_masks=2))
    result = train.train_and_evaluate(c, str(tmp_path / "work"))
    m = {x.name: x.values[0] for x in result.metrics}
    for task in ("sst2", "qnli"):
        for key in (f"{task}_acc_a0.15", f"{task}_acc_plain_a0.15", f"{task}_acc_bow", f"{task}_acc_random_encoder"):
            assert 0.0 <= m[key] <= 1.0, key
        assert result.metric(f"{task}_acc_bow").baseline
        # the GLUE dev split (16 examples) is the test set: accuracies are multiples of 1/16
        assert abs(m[f"{task}_acc_a0.15"] * 16 - round(m[f"{task}_acc_a0.15"] * 16)) < 1e-9
    assert 1.0 <= m["kappa_sq_mean_a0.15"] <= 64.0
    cell = result.extras["cells"]["a0.15_s0"]
    assert math.isfinite(cell["final_loss"]) and 0.0 <= cell["masked_acc"] <= 1.0  # the MLM head ran
    assert result.extras["vocab_size"] == 30 + 4 and result.extras["n_classes"] == 2
    assert (tmp_path / "work" / "text.md").read_text().count("\n") > 4


def test_empirical_kappa_is_n_for_unique_passages_and_one_for_full_masking():
    rng = np.random.default_rng(0)
    ref = rng.integers(4, 40, size=(50, 12)).astype(np.int32)
    kmax, kmean = text.empirical_kappa_sq(ref, 0.0, 10, 2, 0)  # no masking: each passage identifies itself
    assert kmax == kmean == 50.0
    kmax, kmean = text.empirical_kappa_sq(ref, 1.0, 10, 2, 0)  # everything masked: every passage matches
    assert kmax == kmean == 1.0
    # duplicates: a passage present 5 times has K(x, x) = n / 5 without masking
    dup = np.concatenate([np.repeat(ref[:1], 5, 0), ref[1:46]])
    kmax, kmean = text.empirical_kappa_sq(dup, 0.0, 50, 1, 0)
    assert kmax == 50.0 and math.isclose(kmean, (5 * 10.0 + 45 * 50.0) / 50)
