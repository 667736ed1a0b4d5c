"""``from_official_state_dict``: official state-spaces/s4 ``state_dict`` layouts -> eigenkit modules.

Parity on the committed official outputs is in ``test_s4d_parity.py`` (minimal S4D layer and S4DKernel, bare
SSMKernelDiag for four inits × two discretisations, bidirectional FFTConv). Here: the full FFTConv layout with the
options the minimal fixture does not cover (``n_ssm < H``, two channels, softplus dt, bilinear, bidirectional) against
a float64 NumPy transcription of the official ``SSMKernelDiag.forward`` + ``FFTConv.forward``, and the error cases.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit import ssm
from eigenkit.methods.s4d import S4D, S4DConv, S4DModel, Transform, from_official_state_dict

H, N = 4, 8


def _minimal_s4d_sd(rng, h=H, n=N):
    return {
        "D": rng.normal(size=h), "kernel.log_dt": rng.uniform(np.log(1e-3), np.log(1e-1), h),
        "kernel.log_A_real": np.log(0.5) + 0.2 * rng.normal(size=(h, n // 2)),
        "kernel.A_imag": np.pi * np.arange(n // 2) + rng.uniform(size=(h, n // 2)),
        "kernel.C": rng.normal(size=(h, n // 2, 2)) * np.sqrt(0.5),
        "output_linear.0.weight": rng.normal(size=(2 * h, h, 1)) / np.sqrt(h),
        "output_linear.0.bias": rng.normal(size=2 * h) * 0.1,
    }


def _fftconv_sd(rng, *, s, c, bidirectional, dt_transform):
    ck = 2 * c if bidirectional else c
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (H, 1)))
    return {
        "D": rng.normal(size=(c, H)),
        "kernel.inv_dt": np.log(dt) if dt_transform == "exp" else np.log(np.expm1(dt)),
        "kernel.A_real": np.log(0.5) + 0.2 * rng.normal(size=(s, N // 2)),
        "kernel.A_imag": np.pi * np.arange(N // 2) + rng.uniform(size=(s, N // 2)),  # official: -Im A >= 0
        "kernel.B": rng.normal(size=(1, s, N // 2, 2)),
        "kernel.C": rng.normal(size=(ck, H, N // 2, 2)) * np.sqrt(0.5),
    }


def _official_fftconv_numpy(sd, u, *, disc, dt_transform, channels, bidirectional):
    """float64 transcription of official ``SSMKernelDiag._get_params`` / ``forward`` (naive Vandermonde) and
    ``FFTConv.forward``; ``u`` is ``(B, H, L)`` (official ``transposed=True``), output ``(B, channels·H, L)``."""
    inv_dt = sd["kernel.inv_dt"]
    dt = np.exp(inv_dt) if dt_transform == "exp" else np.log1p(np.exp(inv_dt))  # (H, 1)
    A = -np.exp(sd["kernel.A_real"]) - 1j * sd["kernel.A_imag"]  # (S, N/2), real_transform exp
    B = sd["kernel.B"][..., 0] + 1j * sd["kernel.B"][..., 1]  # (1, S, N/2)
    C = sd["kernel.C"][..., 0] + 1j * sd["kernel.C"][..., 1]  # (c', H, N/2)
    h, L = inv_dt.shape[0], u.shape[-1]
    rep = h // A.shape[0]
    A = np.concatenate([A] * rep, axis=0)  # repeat 't n -> (v t) n'
    B = np.concatenate([B] * rep, axis=1)
    dtA = dt * A
    C = (B[:, None] * C).reshape(-1, h, A.shape[-1])
    if disc == "zoh":
        C = C * (np.exp(dtA) - 1.0) / A
        x = dtA
    else:
        C = C * (1.0 / (1.0 - dtA / 2)) * dt
        x = np.log((1.0 + dtA / 2) / (1.0 - dtA / 2))
    K = 2 * np.einsum("chn,hnl->chl", C, np.exp(x[..., None] * np.arange(L))).real  # (c', H, L)
    if bidirectional:
        k0, k1 = K[:channels], K[channels:]
        K = np.pad(k0, ((0, 0), (0, 0), (0, L))) + np.pad(k1[..., ::-1], ((0, 0), (0, 0), (L, 0)))
    n = 2 * L  # official rfft length l_kernel + L, also for the 2L-long two-sided kernel (circular)
    y = np.fft.irfft(np.fft.rfft(u, n=n)[:, None] * np.fft.rfft(K, n=n), n=n)[..., :L]  # (B, c, H, L)
    y = y + np.einsum("bhl,ch->bchl", u, sd["D"])
    return y.reshape(u.shape[0], -1, L)


@pytest.mark.parametrize("s,c,bidirectional,disc,dt_transform", [
    (1, 1, False, "zoh", "exp"),
    (2, 2, False, "zoh", "softplus"),
    (4, 1, False, "bilinear", "softplus"),
    (2, 2, True, "zoh", "exp"),
])
def test_fftconv_layout_vs_official_formula(s, c, bidirectional, disc, dt_transform):
    rng = np.random.default_rng(s + 10 * c)
    sd = _fftconv_sd(rng, s=s, c=c, bidirectional=bidirectional, dt_transform=dt_transform)
    conv = S4DConv(H, N, init=ssm.Init.LIN, n_ssm=s, channels=c, bidirectional=bidirectional,
                   discretization=ssm.Discretization.ZOH if disc == "zoh" else ssm.Discretization.BILINEAR,
                   dt_transform=Transform.EXP if dt_transform == "exp" else Transform.SOFTPLUS,
                   param_dtype=jnp.float64, rngs=nnx.Rngs(0))
    conv = from_official_state_dict(conv, sd)
    u = rng.normal(size=(2, H, 24))
    want = _official_fftconv_numpy(sd, u, disc=disc, dt_transform=dt_transform, channels=c,
                                   bidirectional=bidirectional)
    y = nnx.jit(lambda m, u: m(u))(conv, jnp.asarray(np.swapaxes(u, 1, 2)))  # ours (B, L, c·H)
    np.testing.assert_allclose(np.swapaxes(np.asarray(y), 1, 2), want, rtol=1e-9, atol=1e-11 * np.abs(want).max())


def test_s4block_prefix_and_model_layers():
    """prefix selects one layer's keys; other keys are ignored (e.g. the official example.py S4Model)."""
    rng = np.random.default_rng(0)
    sds = [_minimal_s4d_sd(rng) for _ in range(2)]
    full = {"encoder.weight": np.zeros((H, 1)), "decoder.bias": np.zeros(3),
            **{f"s4_layers.{i}.{k}": v for i, sd in enumerate(sds) for k, v in sd.items()}}
    m = S4DModel(1, 3, d_model=H, d_state=N, n_layers=2, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    for i in range(2):
        m.layers[i] = from_official_state_dict(m.layers[i], full, prefix=f"s4_layers.{i}.")
    for i in range(2):
        np.testing.assert_allclose(m.layers[i].ssm.log_dt[...], sds[i]["kernel.log_dt"].astype(np.float32))
        np.testing.assert_allclose(m.layers[i].output_linear.kernel[...],
                                   sds[i]["output_linear.0.weight"][:, :, 0].T.astype(np.float32))
    assert nnx.jit(lambda m, x: m(x))(m, jnp.ones((2, 5, 1), jnp.float32)).shape == (2, 3)
    with pytest.raises(ValueError, match="no key starting with prefix 's4_layers.7.'"):
        from_official_state_dict(m.layers[0], full, prefix="s4_layers.7.")


def test_input_module_unchanged_and_cast_to_param_dtype():
    rng = np.random.default_rng(1)
    sd = _minimal_s4d_sd(rng)
    layer = S4D(H, N, init=ssm.Init.LEGS, rngs=nnx.Rngs(0))  # float32 module, float64 state_dict
    before = nnx.clone(nnx.state(layer, nnx.Param))
    new = from_official_state_dict(layer, sd)
    after = nnx.state(layer, nnx.Param)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(a, b)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(nnx.state(new, nnx.Param)))
    np.testing.assert_allclose(new.ssm.C[...][0], sd["kernel.C"].astype(np.float32))
    np.testing.assert_array_equal(new.ssm.D[...], sd["D"][None].astype(np.float32))
    np.testing.assert_array_equal(new.ssm.B[...], np.stack([np.ones((H, N // 2)), np.zeros((H, N // 2))], -1))


def test_missing_extra_and_wrong_shape_keys():
    rng = np.random.default_rng(2)
    layer = S4D(H, N, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    sd = _minimal_s4d_sd(rng)
    with pytest.raises(ValueError, match=r"missing key\(s\).*'kernel\.C' \(expected shape \(4, 4, 2\) = "
                                         r"\(H, N/2, 2\)\)"):
        from_official_state_dict(layer, {k: v for k, v in sd.items() if k != "kernel.C"})
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['kernel\.P'\]"):
        from_official_state_dict(layer, {**sd, "kernel.P": np.zeros((1, H, N // 2, 2))})
    with pytest.raises(ValueError, match=r"state_dict\['kernel\.C'\] must have shape \(4, 4, 2\) = \(H, N/2, 2\)"
                                         r".*got \(4, 8, 2\)"):
        from_official_state_dict(layer, {**sd, "kernel.C": np.zeros((H, N, 2))})
    with pytest.raises(ValueError, match=r"'output_linear\.0\.weight'\] must have shape \(8, 4, 1\) = \(2H, H, 1\) "
                                         r"\(Conv1d"):
        from_official_state_dict(layer, {**sd, "output_linear.0.weight": sd["output_linear.0.weight"][:, :, 0]})
    with pytest.raises(TypeError, match="real floating.*view_as_real"):
        from_official_state_dict(layer, {**sd, "kernel.C": sd["kernel.C"][..., 0] + 1j * sd["kernel.C"][..., 1]})
    conv = S4DConv(H, N, init=ssm.Init.LIN, n_ssm=2, rngs=nnx.Rngs(0))
    fsd = _fftconv_sd(rng, s=2, c=1, bidirectional=False, dt_transform="exp")
    with pytest.raises(ValueError, match=r"'kernel\.inv_dt'\] must have shape \(4, 1\).*dt_tie=True"):
        from_official_state_dict(conv, {**fsd, "kernel.inv_dt": np.zeros((H, N // 2))})
    with pytest.raises(ValueError, match=r"'kernel\.A_real'\] must have shape \(2, 4\) = \(n_ssm, N/2\)"):
        from_official_state_dict(conv, {**fsd, "kernel.A_real": np.zeros((H, N // 2))})
    with pytest.raises(ValueError, match=r"missing key\(s\).*'D' \(expected shape \(1, 4\) = \(channels, H\)\)"):
        from_official_state_dict(conv, {k: v for k, v in fsd.items() if k != "D"})


def test_module_options_the_layout_cannot_express():
    rng = np.random.default_rng(3)
    sd = _minimal_s4d_sd(rng)
    with pytest.raises(ValueError, match="glu=True"):
        from_official_state_dict(S4D(H, N, glu=False, init=ssm.Init.LIN, rngs=nnx.Rngs(0)), sd)
    with pytest.raises(ValueError, match="discretization=Discretization.ZOH"):
        from_official_state_dict(
            S4D(H, N, init=ssm.Init.LIN, discretization=ssm.Discretization.BILINEAR, rngs=nnx.Rngs(0)), sd)
    kernel_sd = {k.removeprefix("kernel."): v for k, v in sd.items() if k.startswith("kernel.")}
    for kw, msg in [(dict(bidirectional=True), "bidirectional=False"), (dict(n_ssm=1), "n_ssm=None"),
                    (dict(channels=2), "channels=1"), (dict(dt_transform=Transform.SOFTPLUS), "dt_transform")]:
        with pytest.raises(ValueError, match=msg):
            from_official_state_dict(S4DConv(H, N, init=ssm.Init.LIN, rngs=nnx.Rngs(0), **kw), kernel_sd)
    with pytest.raises(TypeError, match="S4D or S4DConv"):
        from_official_state_dict(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), sd)
