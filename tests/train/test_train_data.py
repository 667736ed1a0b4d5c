"""Host batching helpers: deterministic epochs, exact padded evaluation, classification metrics."""

import jax.numpy as jnp
import numpy as np
import pytest

from eigenkit import train


def test_epoch_batches_cover_each_epoch_once_and_are_pure():
    x = np.arange(20, dtype=np.float32)[:, None]
    b = train.epoch_batches({"x": x, "y": np.arange(20, dtype=np.int32)}, 6, seed=1)
    first_epoch = np.concatenate([b(s)["y"] for s in range(3)])  # 3 full batches of 6, 2 examples dropped
    assert len(set(first_epoch.tolist())) == 18
    np.testing.assert_array_equal(b(4)["x"][:, 0], b(4)["y"].astype(np.float32))
    np.testing.assert_array_equal(b(7)["y"], b(7)["y"])
    assert not np.array_equal(b(0)["y"], b(3)["y"])  # a new permutation each epoch
    with pytest.raises(ValueError, match="batch_size must satisfy"):
        train.epoch_batches({"x": x}, 21, seed=0)
    with pytest.raises(ValueError, match="same leading size"):
        train.epoch_batches({"x": x, "y": np.zeros(3)}, 2, seed=0)


def test_padded_batches_mask_and_exact_mean():
    x = np.arange(13, dtype=np.float32)
    batches = list(train.padded_batches({"x": x}, 8, 8))
    assert [v for _, v in batches] == [8, 5]
    last, _ = batches[-1]
    assert last["x"].shape == (8,) and last["mask"].tolist() == [1] * 5 + [0] * 3
    logits = jnp.asarray([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 1.0]], jnp.float32)
    labels = jnp.asarray([0, 1, 1, 0], jnp.int32)
    m = train.classification_metrics(logits, labels, jnp.asarray([1, 1, 1, 0], jnp.float32))
    assert float(m["accuracy"]) == 2.0 and float(m["count"]) == 3.0
    loss, aux = train.classification_loss(logits, labels)
    assert float(aux["accuracy"]) == 0.5 and np.isfinite(float(loss))
    assert train.accumulate([m, m]) == {"accuracy": 2.0 / 3.0}


def test_process_slices_partition_the_global_batch():
    """Each of P processes gets a contiguous slice; together they are the single-process global batch."""
    arrays = {"x": np.arange(50, dtype=np.float32)[:, None], "y": np.arange(50, dtype=np.int32)}
    whole = train.epoch_batches(arrays, 12, seed=3)
    parts = [train.epoch_batches(arrays, 12, seed=3, process_index=p, process_count=4) for p in range(4)]
    for step in (0, 3, 7):  # 4 batches per epoch: steps in epochs 0 and 1
        np.testing.assert_array_equal(np.concatenate([f(step)["y"] for f in parts]), whole(step)["y"])
    with pytest.raises(ValueError, match="not divisible by the 5 processes"):
        train.epoch_batches(arrays, 12, seed=3, process_index=0, process_count=5)
    single = list(train.padded_batches(arrays, 16, 8))
    split = [list(train.padded_batches(arrays, 16, 8, process_index=p, process_count=2)) for p in range(2)]
    for i, (b, valid) in enumerate(single):
        (b0, v0), (b1, v1) = split[0][i], split[1][i]
        for k in b:
            np.testing.assert_array_equal(np.concatenate([b0[k], b1[k]]), b[k])
        assert v0 + v1 == valid
    assert [v for _, v in single] == [16, 16, 16, 2]  # the last batch: 2 real rows padded to 8
