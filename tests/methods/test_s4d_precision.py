"""The mixed-precision policy inside a real bfloat16 model: the S4D paper preset's model (bidirectional, BatchNorm,
softplus dt), shrunk, computing in bfloat16 with float32 parameters, optimiser state and BatchNorm statistics, while
the primitives that need float32 (the SSM kernel's phases and its FFT convolution) stay float32 — checked on the
operations of the compiled train step, not assumed."""

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit import train
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
