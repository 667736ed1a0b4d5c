"""The mixed-precision policy: bfloat16 compute with float32 parameters, optimiser state and BatchNorm statistics,
while the primitives that need float32 (eigh, Cholesky, the SSM kernel's phases and its FFT convolution) stay in
float32 inside a bfloat16 model — checked on the operations of the compiled train step, not assumed."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import linalg, ssm, train
from experiments.s4d import train as s4d
from experiments.s4d.configs import paper


def _eqns(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it (jit, custom_vjp, scan, cond, remat...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for v in eqn.params.values():
            for sub in v if isinstance(v, list | tuple) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _eqns(inner)


def _in_dtypes(eqn):
    return {jnp.dtype(v.aval.dtype) for v in eqn.invars if hasattr(v.aval, "dtype")}


def _config(compute_dtype):
    c = paper.get_config()  # the paper preset's model (bidirectional, BatchNorm, softplus dt), shrunk
    c.update(dict(d_model=8, d_state=4, n_layers=2, compute_dtype=compute_dtype, num_steps=10, warmup_steps=1))
    return c


def _step_inputs(compute_dtype):
    config = _config(compute_dtype)
    model = s4d.make_model(config)
    mesh = train.make_mesh(jax.devices()[:1])
    state = train.TrainState.create(model, s4d.make_optimizer(config, model), mesh=mesh)
    r = np.random.default_rng(0)
    batch = {"x": r.normal(size=(8, 64, 1)).astype(np.float32), "y": r.integers(0, 10, 8).astype(np.int32)}
    precision = s4d.make_precision(config)
    step = train.make_train_step(s4d.loss_fn, mesh=mesh, precision=precision, donate=False)
    return state, train.shard_batch(batch, mesh), step, precision


def test_from_config_and_errors():
    p = train.Precision.from_config(ml_collections.ConfigDict(dict(compute_dtype="bfloat16")))
    assert p.compute == jnp.bfloat16 and p.params == jnp.float32 and p.opt_state == jnp.float32 and p.is_mixed
    assert not train.Precision.from_config({}).is_mixed
    with pytest.raises(ValueError, match="config.compute_dtype must be one of"):
        train.Precision.from_config({"compute_dtype": "int8"})


def test_bfloat16_s4d_step_keeps_the_spectral_parts_in_float32():
    state, batch, step, precision = _step_inputs("bfloat16")
    assert precision.is_mixed
    eqns = list(_eqns(jax.make_jaxpr(step)(state, batch, jax.random.key(0)).jaxpr))
    dots = [e for e in eqns if e.primitive.name == "dot_general"]
    assert any(_in_dtypes(e) == {jnp.dtype(jnp.bfloat16)} for e in dots), "no bfloat16 matmul: compute is not bf16"
    ffts = [e for e in eqns if e.primitive.name == "fft"]
    assert ffts and all(jnp.dtype(jnp.bfloat16) not in _in_dtypes(e) for e in ffts)
    trig = [e for e in eqns if e.primitive.name in ("exp", "sin", "cos")]  # the kernel's Vandermonde phases
    assert trig
    spectral = [e for e in trig if jnp.dtype(jnp.bfloat16) not in _in_dtypes(e)]
    assert len(spectral) >= 3  # exp, sin and cos of the phases, in float32 or complex64
    # one real step: parameters, optimiser state and BatchNorm statistics stay float32
    new, metrics = step(state, batch, jax.random.key(0))
    assert metrics["loss"].dtype == jnp.float32 and bool(jnp.isfinite(metrics["loss"]))
    for tree in (new.params, new.opt_state, new.rest):
        for leaf in jax.tree.leaves(tree):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.float32


def test_bfloat16_loss_is_close_to_float32():
    s32, b32, step32, _ = _step_inputs("float32")
    s16, b16, step16, _ = _step_inputs("bfloat16")
    _, m32 = step32(s32, b32, jax.random.key(0))
    _, m16 = step16(s16, b16, jax.random.key(0))
    np.testing.assert_allclose(float(m16["loss"]), float(m32["loss"]), rtol=3e-2)


def test_keep_float32_and_opt_state_checks():
    class Frozen(nnx.Param):
        pass

    class Net(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.ones((3, 3), jnp.float32))
            self.f = Frozen(jnp.ones((3,), jnp.float32))

    net = Net()
    train.Precision(compute=jnp.bfloat16, keep_float32=Frozen).cast_params(net)
    assert net.w[...].dtype == jnp.bfloat16 and net.f[...].dtype == jnp.float32
    p = train.Precision(opt_state=jnp.bfloat16)
    params = {"w": jnp.ones((4,), jnp.float32)}
    with pytest.raises(TypeError, match="optimiser state .* is float32, the precision policy asks for bfloat16"):
        p.check_opt_state(optax.adam(1e-3).init(params))
    p.check_opt_state(optax.scale_by_adam(mu_dtype=jnp.bfloat16).init(params).mu)  # the moment built as asked


def test_decompositions_and_the_ssm_convolution_compute_in_float32_for_bfloat16_inputs():
    r = np.random.default_rng(1)
    m = r.normal(size=(6, 6)).astype(np.float32)
    a16 = jnp.asarray(m @ m.T + 6 * np.eye(6, dtype=np.float32), jnp.bfloat16)
    a32 = a16.astype(jnp.float32)  # the same (rounded) matrix in float32
    w16, v16 = linalg.eigh(a16)
    w32, v32 = linalg.eigh(a32)
    assert w16.dtype == v16.dtype == jnp.float32
    np.testing.assert_array_equal(w16, w32)
    l16 = linalg.cholesky_factor(a16)
    assert l16.dtype == jnp.float32
    np.testing.assert_array_equal(l16, linalg.cholesky_factor(a32))
    u = jnp.asarray(r.normal(size=(32, 3)), jnp.bfloat16)
    k = jnp.asarray(r.normal(size=(3, 32)) * 0.5 ** np.arange(32), jnp.float32)
    y = ssm.fft_conv(u, k, jnp.ones((3,), jnp.float32))
    assert y.dtype == jnp.bfloat16
    ref = ssm.fft_conv(u.astype(jnp.float32), k, jnp.ones((3,), jnp.float32))
    np.testing.assert_array_equal(y, ref.astype(jnp.bfloat16))
    with pytest.raises(TypeError, match="k .* and u .* must have the same dtype"):
        ssm.fft_conv(u.astype(jnp.float32), k.astype(jnp.bfloat16))
