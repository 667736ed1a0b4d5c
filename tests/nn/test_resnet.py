"""ResNet-D: the published parameter count, PyTorch padding / pooling semantics, group BatchNorm, the zero-init
identity blocks, train/eval modes, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.nn import GroupBatchNorm, ResNetD, resnet50d
from eigenkit.nn._resnet import avg_pool_ceil


def _params(model) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def test_resnet50d_parameter_count_is_the_published_one():
    # timm resnet50d / mmpretrain ResNetV1d-50 with a 1000-class linear head: 25.58M (25,576,264)
    m = nnx.eval_shape(lambda: resnet50d(1000, rngs=nnx.Rngs(0)))
    assert _params(m) == 25_576_264
    # the deep stem: 3x3 convs 3->32 (s2), 32->32, 32->64 and their BNs replace ResNet-50's 7x7 conv
    assert m.num_features == 2048


def test_avg_pool_ceil_matches_torch_semantics():
    # AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False): edge windows average their in-image pixels only
    x = np.arange(2 * 5 * 7 * 3, dtype=np.float64).reshape(2, 5, 7, 3)
    ref = np.zeros((2, 3, 4, 3))
    for i in range(3):
        for j in range(4):
            ref[:, i, j] = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(axis=(1, 2))
    np.testing.assert_allclose(np.asarray(avg_pool_ceil(jnp.asarray(x), 2)), ref, rtol=1e-12)


def test_group_batch_norm_statistics_per_group():
    x = jax.random.normal(jax.random.key(0), (8, 3, 3, 4), jnp.float64) * 3.0 + 1.0
    bn = GroupBatchNorm(4, group_size=4, param_dtype=jnp.float64)
    y = np.asarray(bn(x))
    xn = np.asarray(x).reshape(2, 4, 3, 3, 4)
    mu = xn.mean(axis=(1, 2, 3), keepdims=True)
    var = xn.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, ((xn - mu) / np.sqrt(var + 1e-5)).reshape(x.shape), rtol=1e-10, atol=1e-10)
    # running statistics: 0.9 * init + 0.1 * mean over groups
    np.testing.assert_allclose(np.asarray(bn.mean[...]), 0.1 * mu.reshape(2, 4).mean(0), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(bn.var[...]), 0.9 + 0.1 * var.reshape(2, 4).mean(0), rtol=1e-10)
    # group_size None = the whole batch = ordinary BatchNorm
    whole = GroupBatchNorm(4, param_dtype=jnp.float64)
    xa = np.asarray(x)
    ref = (xa - xa.mean(axis=(0, 1, 2))) / np.sqrt(xa.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(np.asarray(whole(x)), ref, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="not a multiple of group_size 4"):
        bn(x[:6])
    with pytest.raises(ValueError, match="group_size"):
        GroupBatchNorm(4, group_size=0)


def test_zero_init_residual_blocks_start_as_identity_and_eval_uses_running_stats():
    net = ResNetD((2, 1), width=2, stem_width=2, rngs=nnx.Rngs(0))
    x = jax.nn.relu(jax.random.normal(jax.random.key(1), (4, 4, 4, 8), jnp.float32))
    # the second block of stage 1 (no shortcut conv) maps a non-negative input to itself at initialisation
    block = net.blocks[1]
    assert block.down_conv is None
    np.testing.assert_allclose(np.asarray(block(x)), np.asarray(x), rtol=1e-6)
    img = jax.random.uniform(jax.random.key(2), (4, 17, 15, 3), jnp.float32)  # odd sizes: ceil pooling, torch padding
    graphdef, state = nnx.split(net)

    @functools.partial(jax.jit, static_argnums=2)
    def forward(state, img, train: bool):
        model = nnx.merge(graphdef, state)
        model.train() if train else model.eval()
        return model(img)

    f_train = forward(state, img, True)
    assert f_train.shape == (4, 2 * 4 * 2) and bool(jnp.all(f_train >= 0))
    f_eval = forward(state, img, False)
    assert f_eval.shape == f_train.shape and not np.allclose(np.asarray(f_eval), np.asarray(f_train))


def test_bfloat16_compute_keeps_float32_params_and_features():
    net = ResNetD((1,), width=2, stem_width=2, num_classes=3, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert {x.dtype for x in jax.tree.leaves(nnx.state(net, nnx.Param))} == {jnp.dtype(jnp.float32)}
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)

    @jax.jit
    def loss_and_grad(params, x):
        def loss(p):
            model = nnx.merge(graphdef, p, rest)
            model.eval()  # running statistics: nothing is mutated under grad
            out = model(x)
            return jnp.sum(out), out
        return jax.grad(loss, has_aux=True)(params)

    g, out = loss_and_grad(params, jnp.ones((2, 16, 16, 3), jnp.float32))
    assert out.shape == (2, 3) and out.dtype == jnp.float32
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))


def test_bad_input_names_the_shape():
    net = ResNetD((1,), width=2, stem_width=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        net(jnp.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="stage_sizes"):
        ResNetD((), rngs=nnx.Rngs(0))
