"""S4D layers and the sequence model (Flax NNX), as the official ``models/s4/s4d.py`` and ``example.py``."""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
from flax import nnx

from eigenkit import ssm
from eigenkit._validate import check_array, check_rank_arg
from eigenkit.nn import Pooling


class SSMParam(nnx.Param):
    """The SSM parameters (``log_dt``, ``log_A_real``, ``A_imag``, ``B``): the official recipe trains them with their
    own learning rate and no weight decay (see :func:`s4d_optimizer`)."""


class SSMOutputParam(nnx.Param):
    """The SSM output matrix ``C``: an ordinary parameter, or on the SSM learning rate in the official scalar-lr
    configs (``c_with_ssm_lr``)."""


def _pairs(z: jax.Array) -> jax.Array:
    """complex -> real (..., 2), like ``torch.view_as_real``."""
    return jnp.stack([z.real, z.imag], axis=-1)


def _complex(p: jax.Array) -> jax.Array:
    return jax.lax.complex(p[..., 0], p[..., 1])


class S4DConv(nnx.Module):
    """The diagonal SSM convolution ``y = K * u + D u`` with trainable ``(dt, A, B, C, D)`` (S4D paper Sec. 3).

    Parameters (``N2 = d_state // 2``; names are the official ones, used for optimiser groups):
      ``log_dt (H,)``, ``log_A_real (H, N2)``, ``A_imag (H, N2)`` — ``A = -exp(log_A_real) + i·A_imag``;
      ``B (H, N2, 2)`` and ``C (c, H, N2, 2)`` complex stored as real pairs (``c = 2`` if bidirectional); ``D (H,)``.

    Input/output ``(batch, L, H)``. Convolution mode for training; :meth:`step` (recurrent mode, unidirectional only)
    gives the same outputs one time step at a time.

    Example:
      >>> from flax import nnx
      >>> layer = S4DConv(4, 8, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 16, 4))).shape
      (2, 16, 4)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        init: ssm.Init = ssm.Init.LIN,
        discretization: ssm.Discretization = ssm.Discretization.ZOH,
        bidirectional: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        kernel_method: ssm.KernelMethod = ssm.KernelMethod.CHUNKED,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        h = check_rank_arg(d_model, "d_model", upper=2**20, upper_name="2**20")
        if not isinstance(init, ssm.Init):
            raise TypeError(f"init must be an eigenkit.ssm.Init (explicit; no silent default), got {init!r}")
        if not isinstance(discretization, ssm.Discretization):
            raise TypeError(f"discretization must be an eigenkit.ssm.Discretization, got {discretization!r}")
        A, B = ssm.diag_init(init, d_state, dtype=param_dtype)  # checks d_state even
        n2 = A.shape[0]
        self.d_model, self.d_state = h, d_state
        self.discretization, self.bidirectional, self.kernel_method = discretization, bidirectional, kernel_method
        c = 2 if bidirectional else 1
        log_dt = ssm.init_log_dt((h,), key=rngs.params(), dt_min=dt_min, dt_max=dt_max, dtype=param_dtype)
        self.log_dt = SSMParam(log_dt)
        self.log_A_real = SSMParam(jnp.broadcast_to(jnp.log(-A.real), (h, n2)).astype(param_dtype))
        self.A_imag = SSMParam(jnp.broadcast_to(A.imag, (h, n2)).astype(param_dtype))
        self.B = SSMParam(jnp.broadcast_to(_pairs(B), (h, n2, 2)).astype(param_dtype))
        self.C = SSMOutputParam(_pairs(ssm.init_C((c, h, n2), key=rngs.params(), dtype=param_dtype)))
        self.D = nnx.Param(jax.random.normal(rngs.params(), (h,), param_dtype))

    # -- parameters in complex form -------------------------------------------------------------------------------
    def ssm_params(self):
        """``(A, B, C, dt)``: complex ``(H, N2)``, ``(H, N2)``, ``(c, H, N2)``, real ``(H,)``."""
        A = jax.lax.complex(-jnp.exp(self.log_A_real[...]), self.A_imag[...])
        return A, _complex(self.B[...]), _complex(self.C[...]), jnp.exp(self.log_dt[...])

    def kernel(self, length: int) -> jax.Array:
        """Real ``(c, H, L)`` convolution kernel."""
        A, B, C, dt = self.ssm_params()
        return ssm.ssm_kernel(A, B, C, dt, length, discretization=self.discretization, method=self.kernel_method)

    def conv_kernel(self, length: int, dtype) -> tuple[jax.Array, jax.Array]:
        """``(k, D)`` for :func:`eigenkit.ssm.fft_conv`: ``k`` is ``(H, L)`` (causal) or ``(H, 2L)`` (bidirectional)."""
        k = self.kernel(length).astype(dtype)
        k = ssm.bidirectional_kernel(k[0], k[1]) if self.bidirectional else k[0]
        return k, self.D[...].astype(dtype)

    def __call__(self, u: jax.Array) -> jax.Array:
        u = check_array(u, "u", ndim=3, shape=(None, None, self.d_model), kind="floating")
        k, d = self.conv_kernel(u.shape[1], u.dtype)
        return jax.vmap(ssm.fft_conv, in_axes=(0, None, None))(u, k, d)

    # -- recurrent mode -------------------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> jax.Array:
        """Zero complex state ``(batch, H, N2)``."""
        A, _, _, _ = self.ssm_params()
        return jnp.zeros((batch_size,) + A.shape, A.dtype)

    def step(self, state: jax.Array, u_k: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One step: ``u_k (batch, H)`` -> ``(y_k (batch, H), next_state)``."""
        if self.bidirectional:
            raise ValueError("a bidirectional S4D layer has no recurrent (step) mode: it looks at future inputs")
        A, B, C, dt = self.ssm_params()
        ab, bb = ssm.discretize(A, B, dt, self.discretization)
        d = self.D[...]
        y, nxt = jax.vmap(lambda s, u: ssm.step(ab, bb, C[0], d, s, u))(state, u_k.astype(d.dtype))
        return y.astype(u_k.dtype), nxt


class S4D(nnx.Module):
    """S4D layer as the official minimal ``S4D``: SSM conv -> GELU -> dropout -> pointwise output map.

    The output map is ``Linear(H, 2H)`` + GLU (official ``Conv1d(H, 2H, 1)`` + ``GLU(dim=-2)``) or ``Linear(H, H)``.
    Dropout is tied over the sequence axis (official ``DropoutNd``). Input/output ``(batch, L, H)``.

    Example:
      >>> from flax import nnx
      >>> S4D(4, 8, rngs=nnx.Rngs(0))(jnp.ones((2, 16, 4))).shape
      (2, 16, 4)
    """

    def __init__(self, d_model: int, d_state: int = 64, *, dropout: float = 0.0, glu: bool = True,
                 batch_chunks: int = 1, rngs: nnx.Rngs, **ssm_kwargs):
        self.batch_chunks = check_rank_arg(batch_chunks, "batch_chunks", upper=2**20, upper_name="2**20")
        self.ssm = S4DConv(d_model, d_state, rngs=rngs, **ssm_kwargs)
        self.dropout = nnx.Dropout(dropout, broadcast_dims=(1,), rngs=rngs)
        self.glu = glu
        self.output_linear = nnx.Linear(d_model, 2 * d_model if glu else d_model, rngs=rngs)

    def _post(self, y, rngs=None):
        y = self.dropout(jax.nn.gelu(y, approximate=False), rngs=rngs)
        y = self.output_linear(y)
        if self.glu:
            a, b = jnp.split(y, 2, axis=-1)
            y = a * jax.nn.sigmoid(b)
        return y

    def __call__(self, u: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """``rngs``: optional dropout stream for this call (train mode).

        With ``batch_chunks = c > 1`` the batch is processed in ``c`` rematerialised chunks (``lax.map`` of a
        ``jax.checkpoint``-ed pure function; the kernel is computed once): same outputs and gradients, activation
        memory of forward+backward divided by about ``c`` at the cost of one extra forward. Needs inactive dropout.
        """
        if self.batch_chunks == 1:
            return self._post(self.ssm(u), rngs)
        if self.dropout.rate > 0 and not self.dropout.deterministic:
            raise ValueError("batch_chunks > 1 needs inactive dropout (rate 0 or eval mode)")
        u = check_array(u, "u", ndim=3, shape=(None, None, self.ssm.d_model), kind="floating")
        b, length, h = u.shape
        if b % self.batch_chunks:
            raise ValueError(f"batch size {b} must be divisible by batch_chunks = {self.batch_chunks}")
        k, d = self.ssm.conv_kernel(length, u.dtype)
        w, bias = self.output_linear.kernel[...], self.output_linear.bias[...]
        glu = self.glu

        @jax.checkpoint
        def chunk(params, ub):
            k, d, w, bias = params
            y = jax.vmap(ssm.fft_conv, in_axes=(0, None, None))(ub, k, d)
            y = jax.nn.gelu(y, approximate=False) @ w + bias
            if glu:
                a, g = jnp.split(y, 2, axis=-1)
                y = a * jax.nn.sigmoid(g)
            return y

        ys = jax.lax.map(lambda ub: chunk((k, d, w, bias), ub), u.reshape(self.batch_chunks, -1, length, h))
        return ys.reshape(b, length, ys.shape[-1])

    def init_state(self, batch_size: int) -> jax.Array:
        return self.ssm.init_state(batch_size)

    def step(self, state, u_k):
        y, state = self.ssm.step(state, u_k)
        return self._post(y[:, None, :])[:, 0, :], state


class Norm(enum.Enum):
    LAYER = "layer"
    BATCH = "batch"


class S4DModel(nnx.Module):
    """Sequence classifier of the official ``example.py``: encoder -> n × residual S4D blocks -> pooling -> decoder.

    Block: ``z = norm(x)`` if prenorm; ``z = dropout(S4D(z))``; ``x = x + z``; ``x = norm(x)`` if not prenorm.
    Input ``(batch, L, d_input)`` -> logits ``(batch, d_output)``.

    Example:
      >>> from flax import nnx
      >>> m = S4DModel(1, 10, d_model=8, d_state=4, n_layers=2, rngs=nnx.Rngs(0))
      >>> m(jnp.ones((3, 20, 1))).shape
      (3, 10)
    """

    def __init__(
        self,
        d_input: int,
        d_output: int,
        *,
        d_model: int = 128,
        d_state: int = 64,
        n_layers: int = 4,
        dropout: float = 0.1,
        prenorm: bool = False,
        norm: Norm = Norm.LAYER,
        pooling: Pooling = Pooling.MEAN,
        glu: bool = True,
        rngs: nnx.Rngs,
        **ssm_kwargs,
    ):
        self.prenorm, self.pooling, self.d_input = prenorm, pooling, d_input
        self.encoder = nnx.Linear(d_input, d_model, rngs=rngs)
        self.layers = nnx.List(
            [S4D(d_model, d_state, dropout=dropout, glu=glu, rngs=rngs, **ssm_kwargs) for _ in range(n_layers)]
        )
        if norm is Norm.LAYER:
            mk = lambda: nnx.LayerNorm(d_model, epsilon=1e-5, rngs=rngs)  # noqa: E731
        elif norm is Norm.BATCH:
            mk = lambda: nnx.BatchNorm(d_model, momentum=0.9, epsilon=1e-5, rngs=rngs)  # noqa: E731
        else:
            raise TypeError(f"norm must be a Norm, got {norm!r}")
        self.norms = nnx.List([mk() for _ in range(n_layers)])
        self.dropouts = nnx.List([nnx.Dropout(dropout, broadcast_dims=(1,), rngs=rngs) for _ in range(n_layers)])
        self.decoder = nnx.Linear(d_model, d_output, rngs=rngs)

    def _norm(self, i, x):
        return self.norms[i](x)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Backbone output ``(batch, L, H)`` in convolution mode (``rngs``: optional dropout stream)."""
        x = check_array(x, "x", ndim=3, shape=(None, None, self.d_input), kind="floating")
        x = self.encoder(x)
        for i, (layer, drop) in enumerate(zip(self.layers, self.dropouts)):
            z = self._norm(i, x) if self.prenorm else x
            x = x + drop(layer(z, rngs=rngs), rngs=rngs)
            if not self.prenorm:
                x = self._norm(i, x)
        return x

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        h = self.features(x, rngs=rngs)
        if self.pooling is Pooling.SUM:
            raise ValueError("S4DModel pools with Pooling.MEAN or Pooling.LAST")
        h = jnp.mean(h, axis=1) if self.pooling is Pooling.MEAN else h[:, -1]
        return self.decoder(h)

    # -- recurrent mode (eval) ------------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> list:
        return [layer.init_state(batch_size) for layer in self.layers]

    def step(self, states: list, x_k: jax.Array) -> tuple[jax.Array, list]:
        """One step ``x_k (batch, d_input)`` -> ``(features_k (batch, H), states)``; equals ``features(x)[:, k]``."""
        x = self.encoder(x_k)[:, None, :]
        new = []
        for i, (layer, drop) in enumerate(zip(self.layers, self.dropouts)):
            z = self._norm(i, x) if self.prenorm else x
            y, s = layer.step(states[i], z[:, 0, :])
            new.append(s)
            x = x + drop(y[:, None, :])
            if not self.prenorm:
                x = self._norm(i, x)
        return x[:, 0, :], new

    def generate_features(self, x: jax.Array) -> jax.Array:
        """Backbone output ``(batch, L, H)`` computed by :meth:`step` under ``lax.scan`` (recurrent mode)."""
        x = check_array(x, "x", ndim=3, shape=(None, None, self.d_input), kind="floating")
        graphdef, state = nnx.split(self)

        def body(carry, x_k):
            model = nnx.merge(graphdef, state)
            h, carry = model.step(carry, x_k)
            return carry, h

        _, hs = jax.lax.scan(body, self.init_state(x.shape[0]), jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(hs, 0, 1)
