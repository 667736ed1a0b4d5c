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


def test_final_batchnorm_option_keeps_head_shapes_and_one_schedule_drives_both_groups(monkeypatch):
    """Issue 12: BatchNorm before the backbone's last ReLU changes no shape of the softmax or GCR heads, and the
    Euclidean and Riemannian groups are driven by the very same warm-up + cosine schedule object."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from eigenkit import manifolds
    from experiments.gcr import train as gcr_train
    from experiments.gcr.configs import cpu

    config = cpu.get_config()
    assert config.final_batch_norm and config.warmup_epochs == 1.0
    x = jnp.zeros((4, 28, 28, 1), jnp.float32)
    for k in (0, 8):
        shapes = {}
        for bn in (False, True):
            config.final_batch_norm = bn
            net = gcr_train.Net(config, 10, k, rngs=nnx.Rngs(0))
            net.eval()
            shapes[bn] = (net(x).shape, net.features(x).shape,
                          jax.tree.map(jnp.shape, nnx.state(net.head, nnx.Param)))
        assert shapes[True] == shapes[False]
        assert shapes[True][0] == (4, 10) and shapes[True][1] == (4, config.features)
    seen = []
    real_rsgd, real_sgd = manifolds.riemannian_sgd, optax.sgd
    monkeypatch.setattr(gcr_train.manifolds, "riemannian_sgd", lambda lr, *a, **kw: seen.append(lr) or
                        real_rsgd(lr, *a, **kw))
    monkeypatch.setattr(gcr_train.optax, "sgd", lambda lr, *a, **kw: seen.append(lr) or real_sgd(lr, *a, **kw))
    net = gcr_train.Net(config, 10, 8, rngs=nnx.Rngs(0))
    sched = gcr_train.make_schedule(config, 500, 62)
    gcr_train.make_tx(config, 8, 500, nnx.state(net, nnx.Param), sched)
    assert len(seen) == 2 and seen[0] is sched and seen[1] is sched
    assert float(sched(0)) == 0.0 and abs(float(sched(62)) - config.learning_rate) < 1e-6 and float(sched(500)) < 1e-6
    config.warmup_epochs = 0.0
    assert float(gcr_train.make_schedule(config, 500, 62)(0)) == config.learning_rate


def test_dead_unit_fraction():
    from experiments.gcr.train import dead_unit_fraction

    f = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert dead_unit_fraction(f) == 1 / 3
