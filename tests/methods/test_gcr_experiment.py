"""eigenkit.metrics used by GCR: the intra-class variability measure vs a brute-force pairwise reference."""

import numpy as np

from eigenkit import train
from eigenkit.metrics import intra_class_variability


def _brute(f, y):
    fh = f / np.linalg.norm(f, axis=1, keepdims=True)
    dist = 1.0 - fh @ fh.T  # all ordered pairs, including i = j (distance 0), as the O(nD) identity uses
    within = [dist[np.ix_(y == c, y == c)].mean() for c in np.unique(y)]
    return np.mean(within) / dist.mean()


def test_intra_class_variability_matches_pairwise(rng):
    f = rng.standard_normal((60, 5)) + 3.0 * np.repeat(np.eye(3, 5), 20, axis=0)
    y = np.repeat(np.arange(3), 20)
    np.testing.assert_allclose(intra_class_variability(f, y), _brute(f, y), rtol=1e-12)
    # tight classes -> small variability; labels independent of features -> about 1
    tight = np.repeat(np.eye(3, 5), 20, axis=0) + 1e-3 * rng.standard_normal((60, 5))
    assert intra_class_variability(tight, y) < 1e-3
    assert 0.9 < intra_class_variability(f, rng.permutation(y)) < 1.1


def test_epoch_batches_is_a_pure_function_of_step():
    x = np.arange(20)[:, None].astype(np.float32)
    y = np.arange(20).astype(np.int32)
    b = train.epoch_batches({"x": x, "y": y}, 8, seed=3)
    np.testing.assert_array_equal(b(5)["y"], b(5)["y"])
    assert len(set(np.concatenate([b(0)["y"], b(1)["y"]]))) == 16  # no repeats within an epoch
