"""S4D layers and the sequence model (Flax NNX), as the official ``models/s4/s4d.py`` and ``example.py``."""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from eigenkit import ssm
from eigenkit._validate import check_array, check_rank_arg
from eigenkit.nn import Pooling, mean_pool


class SSMParam(nnx.Param):
    """The SSM parameters (``log_dt``, ``log_A_real``, ``A_imag``, ``B``): the official recipe trains them with their
    own learning rate and no weight decay (see :func:`s4d_optimizer`)."""


class SSMStepParam(SSMParam):
    """The step size parameter ``log_dt``: an :class:`SSMParam` (own learning rate, no weight decay), which the
    official *dict*-lr configs with ``dt: null`` (ListOps) put on the global learning rate, still without weight decay
    (see ``dt_with_ssm_lr`` of :func:`s4d_optimizer`)."""


class SSMOutputParam(nnx.Param):
    """The SSM output matrix ``C``: an ordinary parameter, or on the SSM learning rate in the official scalar-lr
    configs (``c_with_ssm_lr``)."""


class Transform(enum.Enum):
    """Map from an unconstrained parameter ``p`` to a positive value (official ``param_transform`` /
    ``inv_transform`` of ``src/models/sequence/kernels/ssm.py``).

    * ``EXP``: ``exp(p)`` — the minimal ``models/s4/s4d.py`` and the full kernel's class default.
    * ``SOFTPLUS``: ``log(1 + exp(p))`` — ``dt_transform`` of ``configs/model/layer/s4.yaml``, an option of
      ``real_transform``.
    """

    EXP = "exp"
    SOFTPLUS = "softplus"

    def forward(self, p: jax.Array) -> jax.Array:
        """The positive value ``exp(p)`` or ``softplus(p)``."""
        return jnp.exp(p) if self is Transform.EXP else jax.nn.softplus(p)

    def inverse(self, x: jax.Array) -> jax.Array:
        """The parameter of a positive value: ``log x`` or ``softplus⁻¹(x) = x + log(-expm1(-x))`` (stable)."""
        return jnp.log(x) if self is Transform.EXP else x + jnp.log(-jnp.expm1(-x))


def _pairs(z: jax.Array) -> jax.Array:
    """complex -> real (..., 2), like ``torch.view_as_real``."""
    return jnp.stack([z.real, z.imag], axis=-1)


def _complex(p: jax.Array) -> jax.Array:
    return jax.lax.complex(p[..., 0], p[..., 1])


def _check_param_dtype(param_dtype) -> jnp.dtype:
    dt = jnp.dtype(param_dtype)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise TypeError(f"param_dtype must be float32 or float64, got {dt}")
    return dt


def _conv(u: jax.Array, k: jax.Array, d: jax.Array) -> jax.Array:
    """``u (batch, L, H)``, ``k (c, H, L or 2L)``, ``d (c, H)`` -> ``(batch, L, c·H)``, channel-major (official
    ``rearrange(y, 'b c h l -> b (c h) l')``)."""
    per_channel = jax.vmap(ssm.fft_conv, in_axes=(None, 0, 0))  # (c, L, H)
    y = jax.vmap(per_channel, in_axes=(0, None, None))(u, k, d)  # (batch, c, L, H)
    b, c, length, h = y.shape
    return jnp.moveaxis(y, 1, 2).reshape(b, length, c * h)


class S4DConv(nnx.Module):
    """The diagonal SSM convolution ``y = K * u + D u`` with trainable ``(dt, A, B, C, D)`` (S4D paper Sec. 3,
    eqs. (3)–(5); official ``S4DKernel`` + ``FFTConv``).

    Parameters (``N2 = d_state // 2``, ``S = n_ssm``, ``c = channels``, ``c' = 2c`` if bidirectional else ``c``; names
    are the official minimal ones, used for optimiser groups):

    ============== ===================== ==========================================================
    name           shape                 meaning
    ============== ===================== ==========================================================
    ``log_dt``     ``(H,)``              ``dt = dt_transform(log_dt)``
    ``log_A_real`` ``(S, N2)``           ``Re A = -real_transform(log_A_real)``
    ``A_imag``     ``(S, N2)``           ``Im A = A_imag`` (``>= 0``: the minimal official convention)
    ``B``          ``(S, N2, 2)``        complex ``B`` as real pairs (``torch.view_as_real``)
    ``C``          ``(c', H, N2, 2)``    complex ``C``; channel ``s·c + j``: direction ``s`` (0 fwd)
    ``D``          ``(c, H)``            skip ``D u``
    ============== ===================== ==========================================================

    With ``S < H`` the ``S`` copies of ``(A, B)`` are tiled over the ``H`` features: feature ``h`` uses copy
    ``h mod S`` (official ``repeat(A, 't n -> (v t) n')``). Under ``Transform.SOFTPLUS`` ``log_dt`` and
    ``log_A_real`` hold ``softplus⁻¹`` of the positive value (the full official kernel's ``inv_dt``, ``A_real``).

    Input ``(batch, L, H)``, output ``(batch, L, c·H)`` (channel-major; ``(batch, L, H)`` for one channel).
    Convolution mode for training; :meth:`step` (recurrent mode, unidirectional only) gives the same outputs one
    time step at a time.

    Args:
      d_model: ``H``.
      d_state: ``N`` (even), the real state size; ``N/2`` complex modes are stored.
      init: :class:`eigenkit.ssm.Init` of ``(A, B)`` (explicit; no silent default).
      discretization: :class:`eigenkit.ssm.Discretization`.
      bidirectional: two-sided kernel (official ``FFTConv(bidirectional=True)``, see
        :func:`eigenkit.ssm.bidirectional_kernel`).
      channels: ``c`` output channels per feature (official ``channels``; the SSM maps 1 to ``c`` dimensions).
      n_ssm: ``S``, the number of independent ``(A, B)`` copies; must divide ``H``; ``None`` means ``H`` (as the
        minimal official S4D and the full kernel's default).
      dt_min, dt_max: ``dt ~ exp(U[log dt_min, log dt_max])`` at init (whatever ``dt_transform``).
      dt_transform, real_transform: :class:`Transform` of ``dt`` and of ``-Re A``.
      kernel_method: :class:`eigenkit.ssm.KernelMethod`.
      param_dtype: float32 or float64, the dtype of every parameter (complex ones are real pairs of it). The
        computation runs in the input's dtype (the kernel is cast to it).
      rngs: ``nnx.Rngs`` with a ``params`` stream.

    Example:
      >>> from flax import nnx
      >>> layer = S4DConv(4, 8, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((2, 16, 4))).shape
      (2, 16, 4)
      >>> S4DConv(4, 8, channels=2, n_ssm=1, rngs=nnx.Rngs(0))(jnp.ones((2, 16, 4))).shape
      (2, 16, 8)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        init: ssm.Init = ssm.Init.LIN,
        discretization: ssm.Discretization = ssm.Discretization.ZOH,
        bidirectional: bool = False,
        channels: int = 1,
        n_ssm: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_transform: Transform = Transform.EXP,
        real_transform: Transform = Transform.EXP,
        kernel_method: ssm.KernelMethod = ssm.KernelMethod.CHUNKED,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        h = check_rank_arg(d_model, "d_model", upper=2**20, upper_name="2**20")
        if not isinstance(init, ssm.Init):
            raise TypeError(f"init must be an eigenkit.ssm.Init (explicit; no silent default), got {init!r}")
        if not isinstance(discretization, ssm.Discretization):
            raise TypeError(f"discretization must be an eigenkit.ssm.Discretization, got {discretization!r}")
        for name, t in (("dt_transform", dt_transform), ("real_transform", real_transform)):
            if not isinstance(t, Transform):
                raise TypeError(f"{name} must be an eigenkit.methods.s4d.Transform, got {t!r}")
        c = check_rank_arg(channels, "channels", upper=2**10, upper_name="2**10")
        s = h if n_ssm is None else check_rank_arg(n_ssm, "n_ssm", upper=h, upper_name="d_model")
        if h % s:
            raise ValueError(f"n_ssm must divide d_model = {h}, got n_ssm = {s}")
        param_dtype = _check_param_dtype(param_dtype)
        A, B = ssm.diag_init(init, d_state, dtype=param_dtype)  # checks d_state even
        n2 = A.shape[0]
        self.d_model, self.d_state, self.channels, self.n_ssm = h, d_state, c, s
        self.discretization, self.bidirectional, self.kernel_method = discretization, bidirectional, kernel_method
        self.dt_transform, self.real_transform = dt_transform, real_transform
        log_dt = ssm.init_log_dt((h,), key=rngs.params(), dt_min=dt_min, dt_max=dt_max, dtype=param_dtype)
        self.log_dt = SSMStepParam(log_dt if dt_transform is Transform.EXP else dt_transform.inverse(jnp.exp(log_dt)))
        self.log_A_real = SSMParam(jnp.broadcast_to(real_transform.inverse(-A.real), (s, n2)).astype(param_dtype))
        self.A_imag = SSMParam(jnp.broadcast_to(A.imag, (s, n2)).astype(param_dtype))
        self.B = SSMParam(jnp.broadcast_to(_pairs(B), (s, n2, 2)).astype(param_dtype))
        c_kernel = 2 * c if bidirectional else c
        self.C = SSMOutputParam(_pairs(ssm.init_C((c_kernel, h, n2), key=rngs.params(), dtype=param_dtype)))
        self.D = nnx.Param(jax.random.normal(rngs.params(), (c, h), param_dtype))

    # -- parameters in complex form -------------------------------------------------------------------------------
    def ssm_params(self) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """``(A, B, C, dt)``: complex ``(H, N2)`` (the ``S`` copies tiled over ``H``), ``(H, N2)``, ``(c', H, N2)``,
        real ``(H,)``."""
        reps = (self.d_model // self.n_ssm, 1)
        A = jax.lax.complex(-self.real_transform.forward(self.log_A_real[...]), self.A_imag[...])
        B = _complex(self.B[...])
        return jnp.tile(A, reps), jnp.tile(B, reps), _complex(self.C[...]), self.dt_transform.forward(self.log_dt[...])

    def kernel(self, length: int) -> Float[Array, "c_kernel H L"]:
        """Real ``(c', H, L)`` convolution kernel (:func:`eigenkit.ssm.ssm_kernel`)."""
        A, B, C, dt = self.ssm_params()
        return ssm.ssm_kernel(A, B, C, dt, length, discretization=self.discretization, method=self.kernel_method)

    def conv_kernel(self, length: int, dtype) -> tuple[jax.Array, jax.Array]:
        """``(k, D)`` in ``dtype`` for :func:`eigenkit.ssm.fft_conv` per channel: ``k`` is ``(c, H, L)`` (causal) or
        ``(c, H, 2L)`` (bidirectional, :func:`eigenkit.ssm.bidirectional_kernel`), ``D`` is ``(c, H)``."""
        k = self.kernel(length).astype(dtype)
        if self.bidirectional:
            k = jax.vmap(ssm.bidirectional_kernel)(k[: self.channels], k[self.channels:])
        return k, self.D[...].astype(dtype)

    def __call__(self, u: Float[Array, "batch L H"]) -> Float[Array, "batch L cH"]:
        u = check_array(u, "u", ndim=3, shape=(None, None, self.d_model), kind="floating")
        k, d = self.conv_kernel(u.shape[1], ssm.conv_dtype(u.dtype))  # float32 kernel for a bfloat16 u
        return _conv(u, k, d)

    # -- recurrent mode -------------------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> jax.Array:
        """Zero complex state ``(batch, H, N2)``."""
        A, _, _, _ = self.ssm_params()
        return jnp.zeros((batch_size,) + A.shape, A.dtype)

    def step(self, state: jax.Array, u_k: Float[Array, "batch H"]) -> tuple[Float[Array, "batch cH"], jax.Array]:
        """One step: ``u_k (batch, H)`` -> ``(y_k (batch, c·H), next_state (batch, H, N2))``."""
        if self.bidirectional:
            raise ValueError("a bidirectional S4D layer has no recurrent (step) mode: it looks at future inputs")
        A, B, C, dt = self.ssm_params()
        ab, bb = ssm.discretize(A, B, dt, self.discretization)
        d = self.D[...]

        def one(s, u):  # all channels read the same state
            y, nxt = jax.vmap(lambda c_j, d_j: ssm.step(ab, bb, c_j, d_j, s, u))(C, d)
            return y.reshape(-1), nxt[0]

        y, nxt = jax.vmap(one)(state, u_k.astype(d.dtype))
        return y.astype(u_k.dtype), nxt


class S4D(nnx.Module):
    """S4D layer as the official minimal ``S4D``: SSM conv -> GELU -> dropout -> pointwise output map.

    The output map is ``Linear(c·H, 2H)`` + GLU (official ``Conv1d(H, 2H, 1)`` + ``GLU(dim=-2)``; official
    ``S4Block``'s ``output_linear`` for ``c`` channels) or ``Linear(c·H, H)``. Dropout is tied over the sequence axis
    (official ``DropoutNd``). Input/output ``(batch, L, H)``.

    Args:
      d_model: ``H``.
      d_state: ``N``.
      dropout: rate of the tied dropout after the GELU.
      glu: ``Linear(c·H, 2H)`` + GLU (official) or ``Linear(c·H, H)``.
      batch_chunks: see :meth:`__call__`.
      param_dtype: float32 or float64, the dtype of every parameter (SSM and output map).
      rngs: ``nnx.Rngs`` (``params``; ``dropout`` if ``dropout > 0``).
      **ssm_kwargs: options of :class:`S4DConv` (``init``, ``discretization``, ``bidirectional``, ``channels``,
        ``n_ssm``, ``dt_min``, ``dt_max``, ``dt_transform``, ``real_transform``, ``kernel_method``).

    Official weights load with :func:`from_official_state_dict`.

    Example:
      >>> from flax import nnx
      >>> S4D(4, 8, rngs=nnx.Rngs(0))(jnp.ones((2, 16, 4))).shape
      (2, 16, 4)
    """

    def __init__(self, d_model: int, d_state: int = 64, *, dropout: float = 0.0, glu: bool = True,
                 batch_chunks: int = 1, param_dtype=jnp.float32, rngs: nnx.Rngs, **ssm_kwargs):
        self.batch_chunks = check_rank_arg(batch_chunks, "batch_chunks", upper=2**20, upper_name="2**20")
        param_dtype = _check_param_dtype(param_dtype)
        self.ssm = S4DConv(d_model, d_state, param_dtype=param_dtype, rngs=rngs, **ssm_kwargs)
        self.dropout = nnx.Dropout(dropout, broadcast_dims=(1,), rngs=rngs)
        self.glu = glu
        self.output_linear = nnx.Linear(self.ssm.channels * d_model, 2 * d_model if glu else d_model,
                                        param_dtype=param_dtype, rngs=rngs)

    def _post(self, y, rngs=None):
        y = self.dropout(jax.nn.gelu(y, approximate=False), rngs=rngs)
        y = self.output_linear(y)
        if self.glu:
            a, b = jnp.split(y, 2, axis=-1)
            y = a * jax.nn.sigmoid(b)
        return y

    def __call__(self, u: Float[Array, "batch L H"], *, rngs: nnx.Rngs | None = None) -> Float[Array, "batch L H"]:
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
        k, d = self.ssm.conv_kernel(length, ssm.conv_dtype(u.dtype))
        w, bias = self.output_linear.kernel[...], self.output_linear.bias[...]
        glu = self.glu

        @jax.checkpoint
        def chunk(params, ub):
            k, d, w, bias = params
            y = jax.nn.gelu(_conv(ub, k, d), approximate=False) @ w + bias
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


def _batch_norm(d_model: int, param_dtype, rngs: nnx.Rngs) -> nnx.BatchNorm:
    bn = nnx.BatchNorm(d_model, momentum=0.9, epsilon=1e-5, param_dtype=param_dtype, rngs=rngs)
    # nnx.BatchNorm keeps its running statistics in float32 whatever param_dtype is; make them follow param_dtype
    bn.mean = nnx.BatchStat(bn.mean[...].astype(param_dtype))
    bn.var = nnx.BatchStat(bn.var[...].astype(param_dtype))
    return bn


class S4DModel(nnx.Module):
    """Sequence classifier of the official ``example.py``: encoder -> n × residual S4D blocks -> pooling -> decoder.

    Block: ``z = norm(x)`` if prenorm; ``z = dropout(S4D(z))``; ``x = x + z``; ``x = norm(x)`` if not prenorm.
    Input ``(batch, L, d_input)`` -> logits ``(batch, d_output)``.

    Encoder: ``Linear(d_input, H)`` on real features (official ``encoder: linear``: sequential images), or with
    ``tokens=True`` an embedding table ``Embed(d_input, H)`` (``d_input`` = vocabulary size; official ``encoder:
    embedding``, ``nn.Embedding``, N(0, 1) init) on int token ids ``(batch, L)`` (ListOps, text).

    Pooling (official ``SequenceDecoder``): ``MEAN`` over the sequence (``mode: pool``) or ``LAST`` position
    (``mode: last``). With ``lengths`` (int ``(batch,)``, official ``use_lengths: true`` of the LRA text pipelines)
    the pool is restricted to each sequence's first ``lengths[b]`` positions: the masked mean, or position
    ``lengths[b] - 1``. As in the official code only the readout sees the lengths: the backbone runs on the padded
    sequence (padding tokens are embedded; a bidirectional kernel and BatchNorm see them).

    ``param_dtype`` (float32 or float64) is the dtype of every parameter and of the BatchNorm statistics; the
    computation follows the input's dtype, which under strict dtype promotion must equal ``param_dtype``.
    ``**ssm_kwargs`` are :class:`S4DConv` options.

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
        tokens: bool = False,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
        **ssm_kwargs,
    ):
        param_dtype = _check_param_dtype(param_dtype)
        self.prenorm, self.pooling, self.d_input, self.tokens = prenorm, pooling, d_input, bool(tokens)
        if self.tokens:
            self.encoder = nnx.Embed(d_input, d_model, param_dtype=param_dtype,
                                     embedding_init=nnx.initializers.normal(1.0), rngs=rngs)
        else:
            self.encoder = nnx.Linear(d_input, d_model, param_dtype=param_dtype, rngs=rngs)
        self.layers = nnx.List(
            [S4D(d_model, d_state, dropout=dropout, glu=glu, param_dtype=param_dtype, rngs=rngs, **ssm_kwargs)
             for _ in range(n_layers)]
        )
        if norm is Norm.LAYER:
            mk = lambda: nnx.LayerNorm(d_model, epsilon=1e-5, param_dtype=param_dtype, rngs=rngs)  # noqa: E731
        elif norm is Norm.BATCH:
            mk = lambda: _batch_norm(d_model, param_dtype, rngs)  # noqa: E731
        else:
            raise TypeError(f"norm must be a Norm, got {norm!r}")
        self.norms = nnx.List([mk() for _ in range(n_layers)])
        self.dropouts = nnx.List([nnx.Dropout(dropout, broadcast_dims=(1,), rngs=rngs) for _ in range(n_layers)])
        self.decoder = nnx.Linear(d_model, d_output, param_dtype=param_dtype, rngs=rngs)

    def _norm(self, i, x):
        # flax's normalisation computes its statistics in promote_types(dtype, float32), which strict dtype promotion
        # rejects for float64 even though nothing is mixed (input, parameters and statistics share one dtype here).
        # The output keeps the input's dtype: in a bfloat16 model (eigenkit.train.Precision) the statistics are
        # float32 and the activations stay bfloat16.
        with jax.numpy_dtype_promotion("standard"):
            return self.norms[i](x).astype(x.dtype)

    def _check_input(self, x: jax.Array) -> jax.Array:
        if self.tokens:
            return check_array(x, "x", ndim=2, kind="integer")
        return check_array(x, "x", ndim=3, shape=(None, None, self.d_input), kind="floating")

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Backbone output ``(batch, L, H)`` in convolution mode (``rngs``: optional dropout stream); ``x`` is
        ``(batch, L, d_input)`` floats, or ``(batch, L)`` int token ids with ``tokens=True``."""
        x = self.encoder(self._check_input(x))
        for i, (layer, drop) in enumerate(zip(self.layers, self.dropouts)):
            z = self._norm(i, x) if self.prenorm else x
            x = x + drop(layer(z, rngs=rngs), rngs=rngs)
            if not self.prenorm:
                x = self._norm(i, x)
        return x

    def __call__(self, x: jax.Array, *, lengths: jax.Array | None = None, rngs: nnx.Rngs | None = None
                 ) -> jax.Array:
        """Logits ``(batch, d_output)``; ``lengths``: optional int ``(batch,)`` valid lengths for the readout (see the
        class docstring; ``0`` pools nothing and gives the decoder bias)."""
        h = self.features(x, rngs=rngs)
        if self.pooling is Pooling.SUM:
            raise ValueError("S4DModel pools with Pooling.MEAN or Pooling.LAST")
        if lengths is None:
            h = jnp.mean(h, axis=1) if self.pooling is Pooling.MEAN else h[:, -1]
        else:
            lengths = check_array(lengths, "lengths", ndim=1, shape=(h.shape[0],), kind="integer")
            if self.pooling is Pooling.MEAN:
                valid = jnp.arange(h.shape[1], dtype=lengths.dtype)[None, :] < lengths[:, None]
                h = mean_pool(h, valid, normalize=False)
            else:
                last = jnp.clip(lengths - 1, 0, h.shape[1] - 1)
                h = jnp.where((lengths > 0)[:, None], h[jnp.arange(h.shape[0]), last], jnp.zeros_like(h[:, 0]))
        return self.decoder(h)

    # -- recurrent mode (eval) ------------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> list:
        return [layer.init_state(batch_size) for layer in self.layers]

    def step(self, states: list, x_k: jax.Array) -> tuple[jax.Array, list]:
        """One step ``x_k (batch, d_input)`` (``(batch,)`` ids with ``tokens=True``) -> ``(features_k (batch, H),
        states)``; equals ``features(x)[:, k]``."""
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
        x = self._check_input(x)
        graphdef, state = nnx.split(self)

        def body(carry, x_k):
            model = nnx.merge(graphdef, state)
            h, carry = model.step(carry, x_k)
            return carry, h

        _, hs = jax.lax.scan(body, self.init_state(x.shape[0]), jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(hs, 0, 1)
