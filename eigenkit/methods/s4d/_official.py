"""Official state-spaces/s4 PyTorch weights (``state_dict`` as NumPy arrays) -> eigenkit S4D modules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from eigenkit import ssm
from eigenkit._validate import _shape_str
from eigenkit.methods.s4d._layer import S4D, S4DConv, Transform


@dataclasses.dataclass(frozen=True)
class _Key:
    """One official ``state_dict`` entry: its key, expected shape (numbers and symbols) and where it goes."""

    name: str
    shape: tuple[int, ...]
    symbols: str
    to: Callable[[np.ndarray], np.ndarray]  # official array -> eigenkit array (same dtype)
    target: Callable[[S4D | S4DConv], nnx.Variable]
    required: bool = True
    hint: str = ""


def _conj_pairs(p: np.ndarray) -> np.ndarray:
    """Conjugate a complex array stored as ``(..., 2)`` real pairs."""
    return np.stack([p[..., 0], -p[..., 1]], axis=-1)


def _minimal_kernel_keys(conv: S4DConv, prefix: str, get_conv) -> list[_Key]:
    h, n2 = conv.d_model, conv.d_state // 2
    return [
        _Key(f"{prefix}log_dt", (h,), "(H,)", lambda a: a, lambda m: get_conv(m).log_dt),
        _Key(f"{prefix}log_A_real", (h, n2), "(H, N/2)", lambda a: a, lambda m: get_conv(m).log_A_real),
        _Key(f"{prefix}A_imag", (h, n2), "(H, N/2)", lambda a: a, lambda m: get_conv(m).A_imag),
        _Key(f"{prefix}C", (h, n2, 2), "(H, N/2, 2)", lambda a: a[None], lambda m: get_conv(m).C,
             hint="complex C as torch.view_as_real pairs"),
    ]


def _check_minimal_config(conv: S4DConv, what: str, extra: list[str] | None = None) -> None:
    wrong = list(extra or [])
    if conv.discretization is not ssm.Discretization.ZOH:
        wrong.append(f"discretization=Discretization.ZOH (got {conv.discretization})")
    if conv.bidirectional:
        wrong.append("bidirectional=False")
    if conv.channels != 1:
        wrong.append(f"channels=1 (got {conv.channels})")
    if conv.n_ssm != conv.d_model:
        wrong.append(f"n_ssm=None, i.e. d_model = {conv.d_model} (got {conv.n_ssm})")
    for name in ("dt_transform", "real_transform"):
        if getattr(conv, name) is not Transform.EXP:
            wrong.append(f"{name}=Transform.EXP (got {getattr(conv, name)})")
    if wrong:
        raise ValueError(f"the official minimal {what} (models/s4/s4d.py) loads only into a module with "
                         f"{'; '.join(wrong)}")


def _keys_for(module: S4D | S4DConv, state_dict: Mapping, prefix: str) -> tuple[str, list[_Key], bool]:
    """``(layout description, keys, whether B is folded into C)`` for ``module``."""
    if isinstance(module, S4D):
        conv, h, n2 = module.ssm, module.ssm.d_model, module.ssm.d_state // 2
        _check_minimal_config(conv, "S4D", [] if module.glu else ["glu=True (got glu=False)"])

        def ssm_of(m):
            return m.ssm

        keys = [
            _Key(f"{prefix}D", (h,), "(H,)", lambda a: a[None], lambda m: m.ssm.D),
            *_minimal_kernel_keys(conv, f"{prefix}kernel.", ssm_of),
            _Key(f"{prefix}output_linear.0.weight", (2 * h, h, 1), "(2H, H, 1)", lambda a: a[:, :, 0].T,
                 lambda m: m.output_linear.kernel, hint="Conv1d(H, 2H, kernel_size=1) weight"),
            _Key(f"{prefix}output_linear.0.bias", (2 * h,), "(2H,)", lambda a: a, lambda m: m.output_linear.bias),
        ]
        return f"official minimal S4D state_dict (d_model = {h}, d_state = {2 * n2})", keys, True
    if not isinstance(module, S4DConv):
        raise TypeError(f"module must be an eigenkit S4D or S4DConv, got {type(module).__name__}")
    conv, h, n2 = module, module.d_model, module.d_state // 2

    def same(m):
        return m

    full = {f"{prefix}kernel.inv_dt": ("kernel.", True, "FFTConv(mode='diag')"),
            f"{prefix}inv_dt": ("", False, "SSMKernelDiag")}
    found = [v for k, v in full.items() if k in state_dict]
    if found:  # full kernel: FFTConv (kernel.* and D) or a bare SSMKernelDiag (D optional)
        kp, d_required, what = found[0]
        s, c = conv.n_ssm, conv.channels
        ck = 2 * c if conv.bidirectional else c
        kp = prefix + kp
        keys = [
            _Key(f"{prefix}D", (c, h), "(channels, H)", lambda a: a, lambda m: m.D, required=d_required),
            _Key(f"{kp}inv_dt", (h, 1), "(H, 1)", lambda a: a[:, 0], lambda m: m.log_dt,
                 hint="dt_tie=True; an (H, N/2) inv_dt (dt_tie=False) is not supported"),
            _Key(f"{kp}A_real", (s, n2), "(n_ssm, N/2)", lambda a: a, lambda m: m.log_A_real),
            _Key(f"{kp}A_imag", (s, n2), "(n_ssm, N/2)", lambda a: a, lambda m: m.A_imag),
            _Key(f"{kp}B", (1, s, n2, 2), "(1, n_ssm, N/2, 2)", lambda a: _conj_pairs(a[0]), lambda m: m.B),
            _Key(f"{kp}C", (ck, h, n2, 2), "(channels·(2 if bidirectional else 1), H, N/2, 2)", _conj_pairs,
                 lambda m: m.C),
        ]
        return (f"official {what} state_dict (d_model = {h}, d_state = {2 * n2}, n_ssm = {s}, channels = {c}, "
                f"bidirectional = {conv.bidirectional})"), keys, False
    _check_minimal_config(conv, "S4DKernel")
    keys = [*_minimal_kernel_keys(conv, prefix, same),
            _Key(f"{prefix}D", (h,), "(H,)", lambda a: a[None], lambda m: m.D, required=False)]
    return f"official minimal S4DKernel state_dict (d_model = {h}, d_state = {2 * n2})", keys, True


def _as_array(value, key: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as e:  # e.g. a torch tensor that requires grad
        raise TypeError(f"state_dict[{key!r}] is not convertible to a NumPy array ({e}); pass "
                        "{k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}") from e
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"state_dict[{key!r}] must have a real floating dtype (complex parameters are stored as "
                        f"torch.view_as_real pairs, last axis 2), got {a.dtype}")
    return a


def from_official_state_dict(
    module: S4D | S4DConv, state_dict: Mapping[str, np.ndarray], *, prefix: str = ""
) -> S4D | S4DConv:
    """A copy of ``module`` holding the weights of an official state-spaces/s4 ``state_dict``.

    ``module`` fixes the configuration (sizes, options, ``param_dtype``); its parameter values are ignored and it is
    not modified. Arrays are cast to the module's ``param_dtype``. Three official layouts are read:

    1. :class:`S4D` <- minimal ``S4D`` of ``models/s4/s4d.py`` (``S4D(H, d_state=N).state_dict()``):

       ============================= =============== ==================================================
       official key                  shape           eigenkit
       ============================= =============== ==================================================
       ``D``                         ``(H,)``        ``ssm.D = D[None]`` — eigenkit's ``D`` is ``(channels, H)``
       ``kernel.log_dt``             ``(H,)``        ``ssm.log_dt``
       ``kernel.log_A_real``         ``(H, N/2)``    ``ssm.log_A_real``
       ``kernel.A_imag``             ``(H, N/2)``    ``ssm.A_imag`` (same sign: ``A = -exp(log_A_real) + i·A_imag``)
       ``kernel.C``                  ``(H, N/2, 2)`` ``ssm.C = C[None]`` — eigenkit's ``C`` has a leading channel axis
       ``output_linear.0.weight``    ``(2H, H, 1)``  ``output_linear.kernel = weight[:, :, 0].T`` (Conv1d -> Linear)
       ``output_linear.0.bias``      ``(2H,)``       ``output_linear.bias``
       ============================= =============== ==================================================

       The minimal code has no ``B``: it is folded into ``C`` (``B = 1``), so ``ssm.B`` is set to ``1 + 0i`` whatever
       ``init`` the module was built with. GLU: the first ``H`` outputs of the pointwise map are the value, the last
       ``H`` the gate (official ``GLU(dim=-2)``), as eigenkit's split of the last axis. The module must be
       ``S4D(..., glu=True)`` with the :class:`S4DConv` defaults ``discretization=ZOH``, ``bidirectional=False``,
       ``channels=1``, ``n_ssm=None``, ``dt_transform = real_transform = Transform.EXP``.
    2. :class:`S4DConv` <- minimal ``S4DKernel`` (``S4DKernel(H, N=N).state_dict()``): the four ``kernel.*`` entries
       above without the ``kernel.`` prefix, ``B = 1``, and optionally ``D (H,)`` (in the official code the skip
       lives on the ``S4D`` layer; without it ``D`` keeps the module's value). Same module options as 1.
    3. :class:`S4DConv` <- full ``FFTConv(mode='diag')`` of ``src/models/sequence/kernels/fftconv.py`` (detected by
       the ``kernel.inv_dt`` key; inside an ``S4Block`` use ``prefix="layer."``), or a bare ``SSMKernelDiag`` of
       ``src/models/sequence/kernels/ssm.py`` (detected by ``inv_dt``; the same keys without ``kernel.``, ``D``
       optional as in 2):

       ============================= ========================== ===========================================
       official key                  shape                      eigenkit
       ============================= ========================== ===========================================
       ``D``                         ``(channels, H)``          ``D``
       ``kernel.inv_dt``             ``(H, 1)`` (``dt_tie``)    ``log_dt = inv_dt[:, 0]``
       ``kernel.A_real``             ``(n_ssm, N/2)``           ``log_A_real``
       ``kernel.A_imag``             ``(n_ssm, N/2)``           ``A_imag``
       ``kernel.B``                  ``(1, n_ssm, N/2, 2)``     ``B = conj(B[0])``
       ``kernel.C``                  ``(c', H, N/2, 2)``        ``C = conj(C)``
       ============================= ========================== ===========================================

       ``c' = 2·channels`` if bidirectional, direction-major (official ``'(s c) h l'``). The full kernel stores
       ``A = -t(A_real) - i·A_imag`` (``Im A <= 0``); eigenkit uses ``Im A >= 0``, so ``(A, B, C)`` are conjugated
       (``A_imag`` is copied, ``B`` and ``C`` have their imaginary parts negated) — the kernel ``2·Re(...)`` is
       unchanged. The transforms and the discretisation are not recorded in a ``state_dict``: build the module with
       the official run's ``dt_transform``, ``real_transform`` (:class:`Transform`: official ``'exp'`` or
       ``'softplus'``), ``discretization`` (``disc``: ZOH or bilinear), ``n_ssm``, ``channels`` and
       ``bidirectional``. Not supported: ``imag_transform`` other than ``'none'``, ``dt_tie=False``, ``dt_fast``,
       ``bandlimit``, ``is_real``, ``swap_channels``, a GLU ``activation`` inside ``FFTConv``.

    Sequence layout: the official layers take ``(B, H, L)`` (``transposed=True``, the default) or ``(B, L, H)``;
    eigenkit modules take ``(B, L, H)``; the weights do not depend on ``transposed``. For a transposed official
    layer ``official(u)[0] == swapaxes(eigenkit(swapaxes(u, 1, 2)), 1, 2)``.

    Args:
      module: a configured :class:`S4D` or :class:`S4DConv`.
      state_dict: official key -> array (NumPy or anything ``np.asarray`` accepts, e.g.
        ``{k: v.detach().cpu().numpy() for k, v in layer.state_dict().items()}``); real floating dtypes only.
      prefix: read the keys ``prefix + key`` (e.g. ``"s4_layers.0."`` in the state_dict of the official
        ``example.py`` model, ``"layer."`` in an ``S4Block``); keys not starting with ``prefix`` are ignored.

    Returns:
      A new module of the same type and configuration.

    Raises:
      ValueError: a missing or unexpected key (under ``prefix``), a wrong shape (the message names the key and the
        expected shape), or module options the layout cannot express.
      TypeError: a non-floating (e.g. complex) array, or a module that is not S4D/S4DConv.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from eigenkit import ssm
      >>> H, N = 4, 8
      >>> r = np.random.default_rng(0)
      >>> sd = {"D": r.normal(size=H), "kernel.log_dt": r.uniform(-6.9, -2.3, H),
      ...       "kernel.log_A_real": np.full((H, N // 2), np.log(0.5)),
      ...       "kernel.A_imag": np.tile(np.pi * np.arange(N // 2), (H, 1)), "kernel.C": r.normal(size=(H, N // 2, 2)),
      ...       "output_linear.0.weight": r.normal(size=(2 * H, H, 1)), "output_linear.0.bias": np.zeros(2 * H)}
      >>> layer = from_official_state_dict(S4D(H, N, init=ssm.Init.LIN, rngs=nnx.Rngs(0)), sd)
      >>> layer.ssm.C.shape, layer.output_linear.kernel.shape
      ((1, 4, 4, 2), (4, 8))
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    layout, keys, b_is_one = _keys_for(module, state_dict, prefix)
    present = {k for k in state_dict if isinstance(k, str) and k.startswith(prefix)}
    if not present:
        some = sorted(map(str, state_dict))[:8]
        raise ValueError(f"state_dict has no key starting with prefix {prefix!r} (first keys: {some})")
    missing = [k for k in keys if k.required and k.name not in present]
    if missing:
        raise ValueError(f"state_dict is missing key(s) for the {layout}: "
                         + ", ".join(f"{k.name!r} (expected shape {_shape_str(k.shape)} = {k.symbols})"
                                     for k in missing))
    extra = sorted(present - {k.name for k in keys})
    if extra:
        raise ValueError(f"state_dict has unexpected key(s) {extra} for the {layout}; expected "
                         f"{[k.name for k in keys]}")
    arrays = {}
    for k in keys:
        if k.name not in present:
            continue
        a = _as_array(state_dict[k.name], k.name)
        if a.shape != k.shape:
            hint = f" ({k.hint})" if k.hint else ""
            raise ValueError(f"state_dict[{k.name!r}] must have shape {_shape_str(k.shape)} = {k.symbols}{hint} for "
                             f"the {layout}, got {_shape_str(a.shape)}")
        arrays[k.name] = a
    new = nnx.clone(module)
    for k in keys:
        if k.name in arrays:
            var = k.target(new)
            var[...] = jnp.asarray(k.to(arrays[k.name]), var[...].dtype)
    if b_is_one:
        conv = new.ssm if isinstance(new, S4D) else new
        b = conv.B[...]
        conv.B[...] = jnp.stack([jnp.ones(b.shape[:-1], b.dtype), jnp.zeros(b.shape[:-1], b.dtype)], axis=-1)
    return new
