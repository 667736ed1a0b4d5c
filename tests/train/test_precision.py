"""The mixed-precision policy (eigenkit.train.Precision): config parsing, the keep-float32 filter, the optimiser-state
check, and the primitives that compute in float32 when handed bfloat16 (eigh, Cholesky, the SSM convolution). The
policy inside a real bfloat16 model's compiled step: tests/methods/test_s4d_precision.py."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from eigenkit import linalg, ssm, train


def test_from_config_and_errors():
    p = train.Precision.from_config(ml_collections.ConfigDict(dict(compute_dtype="bfloat16")))
    assert p.compute == jnp.bfloat16 and p.params == jnp.float32 and p.opt_state == jnp.float32 and p.is_mixed
    assert not train.Precision.from_config({}).is_mixed
    with pytest.raises(ValueError, match="config.compute_dtype must be one of"):
        train.Precision.from_config({"compute_dtype": "int8"})


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
