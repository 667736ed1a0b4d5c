"""eigenkit.nn._cnn.SmallCNN (the GCR experiment's backbone): shapes, dtype, leading axes, BatchNorm state, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.nn import SmallCNN


def test_shapes_leading_axes_and_nonnegative(rng):
    net = SmallCNN(1, (12, 10), channels=(3, 5), features=7, rngs=nnx.Rngs(0))
    x = rng.standard_normal((2, 3, 12, 10, 1)).astype(np.float32)
    y = net(x)
    assert y.shape == (2, 3, 7) and y.dtype == jnp.float32
    assert bool(jnp.all(y >= 0))
    np.testing.assert_allclose(y.reshape(6, 7), net(x.reshape(6, 12, 10, 1)), rtol=1e-6, atol=1e-6)
    lin = SmallCNN(1, (12, 10), channels=(3,), features=4, final_relu=False, rngs=nnx.Rngs(0))
    assert bool(jnp.any(lin(x[0]) < 0))


def test_batchnorm_statistics_are_not_params(rng):
    net = SmallCNN(1, (8, 8), channels=(4,), features=3, batch_norm=True, rngs=nnx.Rngs(0))
    params = nnx.state(net, nnx.Param)
    stats = nnx.state(net, nnx.BatchStat)
    assert len(jax.tree.leaves(stats)) == 2 and len(jax.tree.leaves(params)) == 6
    before = [np.asarray(a) for a in jax.tree.leaves(stats)]
    net.train()
    net(rng.standard_normal((4, 8, 8, 1)).astype(np.float32))
    after = jax.tree.leaves(nnx.state(net, nnx.BatchStat))
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_too_small_image_errors():
    with pytest.raises(ValueError, match="too small"):
        SmallCNN(1, (2, 2), channels=(3, 3), rngs=nnx.Rngs(0))
