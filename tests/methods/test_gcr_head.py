"""GCR head: logits vs NumPy, basis invariance, grads, errors, labels, data-parallel training step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads

from eigenkit import manifolds as mf
from eigenkit import train
from eigenkit.methods import gcr

C, D, K, B = 4, 6, 2, 5


def _np_logits(x, w_official, k, gamma=25.0):
    """The official forward (F.normalize, fc with W (C·k, D), reshape (B, C, k), norm), in float64 NumPy."""
    x = x.astype(np.float64)
    xh = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    s = gamma * xh @ w_official.astype(np.float64).T
    return np.linalg.norm(s.reshape(len(x), -1, k), axis=-1)


def _bases(seed, dtype=np.float32):
    return np.asarray(mf.grassmann_random_point((C, D, K), key=jax.random.key(seed), dtype=dtype))


def test_logits_match_official_formula(rng, dtype, tol):
    b = _bases(0, dtype)
    x = rng.standard_normal((B, D)).astype(dtype)
    out = jax.jit(gcr.grassmann_logits)(x, b)
    assert out.shape == (B, C) and out.dtype == dtype
    ref = _np_logits(x, np.asarray(gcr.to_official_weight(b)), K)
    np.testing.assert_allclose(out, ref, rtol=tol[0], atol=25 * tol[1])
    np.testing.assert_array_equal(gcr.from_official_weight(gcr.to_official_weight(b), K), b)


def test_basis_invariance_of_logits_and_loss(rng, dtype, tol):
    b = _bases(1, dtype)
    x = rng.standard_normal((B, D)).astype(dtype)
    y = rng.integers(0, C, B)
    r = np.linalg.qr(rng.standard_normal((C, K, K)))[0].astype(dtype)  # one orthogonal R per class
    br = b @ r
    l1, l2 = gcr.grassmann_logits(x, b), gcr.grassmann_logits(x, br)
    np.testing.assert_allclose(l1, l2, rtol=tol[0], atol=25 * tol[1])
    ce = lambda lg: optax.softmax_cross_entropy_with_integer_labels(lg, y).mean()  # noqa: E731
    np.testing.assert_allclose(ce(l1), ce(l2), rtol=tol[0])
    # logits are scale-invariant in x and bounded by γ
    np.testing.assert_allclose(gcr.grassmann_logits(3 * x, b), l1, rtol=tol[0], atol=25 * tol[1])
    assert float(jnp.max(l1)) <= 25.0 * (1 + 1e-6)


def test_grads_and_zero_feature():
    rng = np.random.default_rng(1)
    b = jnp.asarray(_bases(2, np.float64))
    x = jnp.asarray(rng.standard_normal((B, D)))
    y = jnp.asarray(rng.integers(0, C, B))

    def loss(bb, xx):
        return optax.softmax_cross_entropy_with_integer_labels(gcr.grassmann_logits(xx, bb), y).mean()

    check_grads(jax.jit(loss), (b, x), order=1, modes=["rev"])
    # a feature orthogonal to a whole subspace: finite (zero-norm) gradient, not NaN
    x0 = jnp.zeros((1, D)).at[0, 0].set(1.0)
    b0 = jnp.zeros((C, D, K)).at[:, 1:1 + K, :].set(jnp.eye(K))
    g = jax.grad(lambda bb: jnp.sum(gcr.grassmann_logits(x0, bb)))(b0)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_vmap_matches_loop(rng):
    b = _bases(3)
    x = rng.standard_normal((3, B, D)).astype(np.float32)
    out = jax.vmap(gcr.grassmann_logits, in_axes=(0, None))(x, b)
    np.testing.assert_allclose(out, np.stack([gcr.grassmann_logits(x[i], b) for i in range(3)]), rtol=1e-6)


def test_module_init_and_errors(rng):
    head = gcr.GrassmannClassifier(D, C, K, rngs=nnx.Rngs(0))
    assert isinstance(head.bases, gcr.GrassmannParam) and head.bases.shape == (C, D, K)
    mf.check_orthonormal(head.bases[...])
    assert head(jnp.ones((B, D), jnp.float32)).shape == (B, C)
    b = _bases(4)
    head2 = gcr.GrassmannClassifier(D, C, K, init_bases=b, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(head2.bases[...], b)
    with pytest.raises(ValueError, match="subspace_dim <= in_features"):
        gcr.GrassmannClassifier(3, C, 4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="orthonormal columns"):
        gcr.GrassmannClassifier(D, C, K, init_bases=2 * b, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="init_bases must have shape"):
        gcr.GrassmannClassifier(D, C, K, init_bases=b[:, :, :1], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="features"):
        gcr.grassmann_logits(np.ones((B, D + 1), np.float32), b)
    with pytest.raises(TypeError, match="same dtype"):
        gcr.grassmann_logits(np.ones((B, D), np.float64), b)


class _Net(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(3, D, rngs=rngs)
        self.head = gcr.GrassmannClassifier(D, C, K, rngs=rngs)

    def __call__(self, x):
        return self.head(jax.nn.relu(self.lin(x)))


def _loss_fn(model, batch, key):
    del key
    logits = model(batch["x"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean(), {}


def test_partition_training_data_parallel_matches_single_device(rng):
    batch = {"x": rng.standard_normal((16, 3)).astype(np.float32), "y": rng.integers(0, C, 16).astype(np.int32)}

    def run(mesh):
        model = _Net(nnx.Rngs(0))
        labels = gcr.grassmann_labels(nnx.state(model, nnx.Param))
        assert jax.tree.leaves(labels).count(gcr.GRASSMANN_LABEL) == 1
        tx = optax.partition({"grassmann": mf.riemannian_sgd(0.02, 0.9), "euclidean": optax.sgd(0.02, 0.9)}, labels)
        state = train.TrainState.create(model, tx, mesh=mesh)
        step = train.make_train_step(_loss_fn, mesh=mesh)
        losses = []
        for s in range(4):
            b = train.shard_batch(batch, mesh) if mesh is not None else batch
            state, m = step(state, b, jax.random.key(s))
            losses.append(float(m["loss"]))
        return state, losses

    s8, l8 = run(train.make_mesh())
    s1, l1 = run(None)
    assert l8[-1] < l8[0], l8
    np.testing.assert_allclose(l8, l1, rtol=1e-5)
    b8, b1 = np.asarray(s8.params["head"]["bases"][...]), np.asarray(s1.params["head"]["bases"][...])
    np.testing.assert_allclose(b8 @ np.swapaxes(b8, -1, -2), b1 @ np.swapaxes(b1, -1, -2), atol=1e-5)
    np.testing.assert_allclose(np.swapaxes(b8, -1, -2) @ b8, np.broadcast_to(np.eye(K), (C, K, K)), atol=1e-5)
