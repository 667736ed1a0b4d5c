"""MLC (eigenkit.methods.mlc) against direct definitions, sklearn's clustering metrics, and 1 vs 8 devices.

Parity with the CPP code is in test_mlc_parity.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from eigenkit import metrics, train
from eigenkit.linalg import SinkhornGrad
from eigenkit.methods import mlc


def _sphere(rng, n, d, dtype=np.float64):
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def direct_objective(z, g, eps, gamma, pigam):
    """MCR²/MLC with np.linalg.slogdet over d×d matrices (CPP's side of the Gram)."""
    n, d = z.shape
    rate = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * z.T @ z)[1]
    comp = 0.0
    for j in range(g.shape[1]):
        t = g[:, j].sum()
        comp += t / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (t * eps**2) * (z.T * g[:, j]) @ z)[1]
    return -rate + gamma * comp + pigam * 0.5 * np.sum(g**2), rate, comp


@pytest.mark.parametrize("n,d", [(12, 3), (5, 9)])
def test_objective_equals_its_logdet_definition(n, d, dtype, tol, rng):
    z = _sphere(rng, n, d)
    g = np.asarray(mlc.membership(jnp.asarray(_sphere(rng, n, d)), eta=0.3, n_iter=7))
    loss, aux = jax.jit(lambda z, g: mlc.mlc_objective(z, g, eps=0.4, gamma=1.3, pigam=0.05))(
        jnp.asarray(z, dtype), jnp.asarray(g, dtype))
    ref, rate, comp = direct_objective(z, g, 0.4, 1.3, 0.05)
    rtol, atol = tol
    np.testing.assert_allclose(float(loss), ref, rtol=10 * rtol, atol=10 * atol)
    np.testing.assert_allclose([float(aux["rate"]), float(aux["compress"])], [rate, comp], rtol=10 * rtol,
                               atol=10 * atol)
    assert loss.dtype == dtype


def test_hard_partition_gives_the_classwise_mcr2_term(rng):
    z = _sphere(rng, 9, 4)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    onehot = np.eye(3)[labels]
    _, aux = mlc.mlc_objective(jnp.asarray(z), jnp.asarray(onehot), eps=0.5)
    ref = sum((labels == k).sum() / 9 * 0.5 * np.linalg.slogdet(
        np.eye(4) + 4 / ((labels == k).sum() * 0.25) * z[labels == k].T @ z[labels == k])[1] for k in range(3))
    np.testing.assert_allclose(float(aux["compress"]), ref, rtol=1e-10)


def test_membership_is_doubly_stochastic_and_permutation_equivariant(rng):
    c = jnp.asarray(_sphere(rng, 10, 4))
    g5 = np.asarray(mlc.membership(c, eta=0.175))
    np.testing.assert_allclose(g5.sum(1), 1.0, atol=1e-12)  # rows exact after the final u-update
    assert np.all(g5 >= 0)
    g = np.asarray(mlc.membership(c, eta=0.5, n_iter=401))
    np.testing.assert_allclose(g.sum(0), 1.0, atol=1e-8)
    np.testing.assert_allclose(g.sum(1), 1.0, atol=1e-8)
    np.testing.assert_allclose(g, g.T, atol=1e-8)  # symmetric similarity, equal marginals
    perm = rng.permutation(10)
    gp = np.asarray(mlc.membership(c[perm], eta=0.175))
    np.testing.assert_allclose(gp, g5[np.ix_(perm, perm)], atol=1e-12)
    z = jnp.asarray(_sphere(rng, 10, 4))
    l1 = mlc.mlc_loss(z, c, eps=0.3, eta=0.175)[0]
    l2 = mlc.mlc_loss(z[perm], c[perm], eps=0.3, eta=0.175)[0]
    np.testing.assert_allclose(float(l1), float(l2), rtol=1e-12)
    # paper mode (no |.|) differs once the cluster outputs have negative inner products
    assert not np.allclose(np.asarray(mlc.membership(c, eta=0.175, abs_similarity=False)), g5)


def test_sinkhorn_gradient_modes(rng):
    """UNROLLED is the exact derivative of the 5-step map (finite differences); STOP_V (CPP) drops the path
    through the column potential, so it differs from it — and equals the UNROLLED gradient of the map whose column
    potential is a constant."""
    z = jnp.asarray(_sphere(rng, 8, 3))
    c0 = jnp.asarray(rng.standard_normal((8, 3)))

    def f(c, mode):
        return mlc.mlc_loss(z, mlc.sphere_normalize(c), eps=0.4, eta=0.3, grad_mode=mode, pigam=0.05)[0]

    from jax.test_util import check_grads

    check_grads(lambda c: f(c, SinkhornGrad.UNROLLED), (c0,), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
    g_un = jax.grad(f)(c0, SinkhornGrad.UNROLLED)
    g_sv = jax.grad(f)(c0, SinkhornGrad.STOP_V)
    assert np.all(np.isfinite(g_sv)) and not np.allclose(g_un, g_sv, atol=1e-6)
    # with n_iter = 1 there is no v-update: both modes coincide
    g1 = [jax.grad(lambda c, m=m: mlc.mlc_loss(z, c, eps=0.4, eta=0.3, n_iter=1, grad_mode=m)[0])(c0)
          for m in SinkhornGrad]
    np.testing.assert_allclose(g1[0], g1[1], rtol=1e-12)


def test_views_average_and_tcr_loss(rng):
    zv = jnp.asarray(np.stack([_sphere(rng, 6, 3), _sphere(rng, 6, 3)]))
    cv = jnp.asarray(np.stack([_sphere(rng, 6, 3), _sphere(rng, 6, 3)]))
    loss, aux = mlc.mlc_loss_views(zv, cv, eps=0.3, eta=0.2, gamma=1.0)
    g = (mlc.membership(cv[0], eta=0.2) + mlc.membership(cv[1], eta=0.2)) / 2
    z = mlc.sphere_normalize(zv.mean(0))
    np.testing.assert_allclose(float(loss), float(mlc.mlc_objective(z, g, eps=0.3)[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(aux["gamma_mat"]), np.asarray(g), rtol=1e-12)
    tl, taux = mlc.tcr_pretrain_loss(zv, eps=0.5, lam=2.0)
    cos = np.mean(np.sum(np.asarray(zv[0]) * np.asarray(zv[1]), axis=1))
    n, d = 6, 3
    m = np.asarray(zv).mean(0)
    rate = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * 0.25) * m.T @ m)[1]
    np.testing.assert_allclose(float(tl), -rate - 2.0 * cos, rtol=1e-12)
    np.testing.assert_allclose(float(mlc.tcr_loss(zv[0], eps=0.5)),
                               -0.5 * np.linalg.slogdet(np.eye(d) + d / (n * 0.25) * zv[0].T @ zv[0])[1], rtol=1e-12)
    assert float(taux["agreement"]) == pytest.approx(cos)


def test_jit_vmap_grad_and_bad_inputs(rng):
    z = jnp.asarray(np.stack([_sphere(rng, 7, 3) for _ in range(3)]))
    f = jax.jit(jax.vmap(lambda z, c: mlc.mlc_loss(z, c, eps=0.3, eta=0.2)[0]))
    batched = f(z, z[::-1])
    loop = [float(mlc.mlc_loss(z[i], z[2 - i], eps=0.3, eta=0.2)[0]) for i in range(3)]
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-10)
    g = jax.grad(lambda z: mlc.mlc_loss(z, z, eps=0.3, eta=0.2)[0])(z[0])
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match="gamma_mat"):
        mlc.mlc_objective(z[0], jnp.ones((6, 7)), eps=0.3)
    with pytest.raises(ValueError, match="eps"):
        mlc.mlc_objective(z[0], jnp.eye(7), eps=0.0)
    with pytest.raises(ValueError, match="z_views"):
        mlc.tcr_pretrain_loss(z[:1], eps=0.5, lam=1.0)
    with pytest.raises(ValueError, match="z"):
        mlc.mlc_loss(z[0], z[0][:, :2], eps=0.3, eta=0.2)
    with pytest.raises(ValueError, match="eta"):
        mlc.membership(z[0], eta=-1.0)
    with pytest.raises(TypeError, match="c"):
        mlc.membership(jnp.ones((3, 2), jnp.int32), eta=0.1)


def test_single_sample_and_cluster_head_copy(rng):
    z = jnp.asarray(_sphere(rng, 1, 4))
    g = mlc.membership(z, eta=0.2)
    np.testing.assert_allclose(np.asarray(g), [[1.0]])
    assert np.isfinite(float(mlc.mlc_loss(z, z, eps=0.3, eta=0.2)[0]))
    net = mlc.MLCNet(None, 5, 16, 4, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.standard_normal((6, 5)), jnp.float32)
    net.eval()
    zz, cc = net(x)
    assert not np.allclose(zz, cc)
    mlc.copy_feature_head_to_cluster_head(net)
    zz, cc = net(x)
    np.testing.assert_array_equal(np.asarray(zz), np.asarray(cc))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(zz), axis=1), 1.0, rtol=1e-6)


def test_loss_over_the_global_batch_is_the_same_on_1_and_8_devices(rng):
    """The loss of a sharded batch (8 fake devices) equals the single-device loss — and differs from the mean of
    per-shard losses, which is what a per-device (pmap-style) implementation would optimise."""
    assert jax.device_count() == 8
    net = mlc.MLCNet(None, 6, 16, 4, rngs=nnx.Rngs(1))
    mlc.copy_feature_head_to_cluster_head(net)
    graphdef, state = nnx.split(net)
    x = jnp.asarray(rng.standard_normal((64, 6)), jnp.float32)

    def loss(state, x):
        model = nnx.merge(graphdef, state)
        model.eval()
        z, c = model(x)
        return mlc.mlc_loss(z, c, eps=math.sqrt(0.1), eta=0.175, pigam=0.05)[0]

    one = jax.jit(loss)(state, jax.device_put(x, jax.devices()[0]))
    mesh = train.make_mesh()
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    assert len(xs.sharding.device_set) == 8
    eight = jax.jit(loss)(state, xs)
    np.testing.assert_allclose(float(eight), float(one), rtol=1e-5)
    per_shard = np.mean([float(loss(state, x[i * 8:(i + 1) * 8])) for i in range(8)])
    assert abs(per_shard - float(one)) > 1e-2


def test_train_step_on_8_devices_matches_1_device(rng):
    """A full train step of the experiment's MLC loss (two augmented views, BatchNorm, Sinkhorn) on an 8-device
    mesh gives the loss and parameters of the single-device step."""
    import optax

    from experiments.mlc import train as mlc_train
    from experiments.mlc.configs import smoke

    c = smoke.get_config()
    _, mlc_fn = mlc_train.make_loss_fns(c)
    x = rng.standard_normal((16, 28, 28, 1)).astype(np.float32)
    out = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = train.make_mesh(devices)
        model = mlc_train.build_model(c, (28, 28, 1), 0)
        mlc.copy_feature_head_to_cluster_head(model)
        state = train.TrainState.create(model, optax.sgd(0.1), mesh=mesh)
        step = train.make_train_step(mlc_fn, mesh=mesh)
        state, m = step(state, train.shard_batch({"x": x}, mesh), jax.random.key(3))
        out.append((float(m["loss"]), jax.tree.leaves(state.params)[0]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(out[1][1]), np.asarray(out[0][1]), rtol=1e-3, atol=1e-6)


# --- clustering metrics (eigenkit.metrics) ---------------------------------------------------------------------


def test_acc_and_nmi_equal_sklearn(rng):
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import confusion_matrix, normalized_mutual_info_score

    cases = [(rng.integers(0, 5, 200), rng.integers(0, 5, 200)), (rng.integers(0, 3, 50), rng.integers(0, 7, 50)),
             (np.arange(30) % 4, (np.arange(30) % 4 + 1) % 4), (np.zeros(5, int), np.arange(5))]
    for y, p in cases:
        assert metrics.normalized_mutual_info(y, p) == pytest.approx(normalized_mutual_info_score(y, p), abs=1e-12)
        labels = np.union1d(y, p)
        cm = confusion_matrix(y, p, labels=labels)
        r, cidx = linear_sum_assignment(-cm)
        assert metrics.clustering_accuracy(y, p) == pytest.approx(cm[r, cidx].sum() / len(y), abs=1e-12)
    assert metrics.clustering_accuracy(np.arange(30) % 4, (np.arange(30) % 4 + 1) % 4) == 1.0
    assert metrics.normalized_mutual_info([0, 0, 0], [1, 1, 1]) == 1.0
    with pytest.raises(ValueError, match="labels and pred"):
        metrics.clustering_accuracy([0, 1], [0])


def test_spectral_clustering_and_rank(rng):
    blocks = np.kron(np.eye(3), np.ones((20, 20))) + 0.01 * rng.random((60, 60))
    perm = rng.permutation(60)
    truth = np.repeat(np.arange(3), 20)[perm]
    pred = metrics.spectral_clustering(blocks[np.ix_(perm, perm)], 3, seed=0)
    assert metrics.clustering_accuracy(truth, pred) == 1.0
    # two noisy subspaces: the kNN graph of their points separates them
    basis = np.linalg.qr(rng.standard_normal((10, 4)))[0]
    x = np.concatenate([rng.standard_normal((40, 2)) @ basis[:, :2].T, rng.standard_normal((40, 2)) @ basis[:, 2:].T])
    a = metrics.knn_affinity(x, 5)
    assert np.array_equal(a, a.T) and np.all(np.diag(a) == 0)
    assert metrics.clustering_accuracy(np.repeat([0, 1], 40), metrics.spectral_clustering(a, 2, seed=0)) == 1.0
    assert metrics.numerical_rank(x[:40]) <= 2 and metrics.numerical_rank(x) <= 4
    assert metrics.numerical_rank(np.eye(5)) == 5
    with pytest.raises(ValueError, match="nonnegative"):
        metrics.spectral_clustering(-blocks, 3, seed=0)
    with pytest.raises(ValueError, match="n_clusters"):
        metrics.spectral_clustering(blocks, 60, seed=0)
