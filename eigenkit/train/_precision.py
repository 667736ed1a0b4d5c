"""One mixed-precision policy: the dtype of the computation, of the stored parameters and of the optimiser state.

:class:`Precision` is read from a config (``compute_dtype``, ``param_dtype``, ``opt_state_dtype``; all default
float32, i.e. no policy) and given to :func:`eigenkit.train.make_train_step` / :func:`make_eval_step`. Inside the
step the trainable parameters and the floating leaves of the batch are cast to ``compute`` before the forward pass
(the gradient flows back through the cast to the stored ``params`` dtype, so updates accumulate in float32), and
the loss and metrics come back in float32. Parameters matched by ``keep_float32`` (an NNX filter: the S4D SSM
parameters, Grassmann bases — whatever must not be rounded) are not cast. The spectral primitives need no help:
the square-matrix decompositions (``eigh``, Cholesky, logdets) and the SSM convolution compute in float32 when
handed bfloat16 (``eigenkit._validate.at_least_float32``, :func:`eigenkit.ssm.conv_dtype`), and the SSM kernel
only accepts complex64 or wider. BatchNorm statistics and other non-trainable state are never cast.

``opt_state`` is the dtype for optimiser moments; optimisers are built by the experiment, so it is applied where they
are (e.g. ``optax.adamw(..., mu_dtype=precision.opt_state)``) — :meth:`Precision.check_opt_state` verifies it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_FLOATS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16, "float64": jnp.float64}


# flax layers whose ``dtype`` attribute is their computation dtype; a policy sets it on the step's fresh copy of the
# module (BatchNorm and LayerNorm still reduce in float32: flax's force_float32_reductions)
_FLAX_LAYERS = (nnx.Linear, nnx.LinearGeneral, nnx.Einsum, nnx.Conv, nnx.ConvTranspose, nnx.Embed, nnx.BatchNorm,
                nnx.LayerNorm, nnx.RMSNorm, nnx.GroupNorm)


def _dtype(value, key: str) -> jnp.dtype:
    name = jnp.dtype(value).name if not isinstance(value, str) else value
    if name not in _FLOATS:
        raise ValueError(f"config.{key} must be one of {sorted(_FLOATS)}, got {value!r}")
    return jnp.dtype(_FLOATS[name])


@dataclasses.dataclass(frozen=True)
class Precision:
    """Mixed-precision policy (see the module docstring).

    Attributes:
      compute: dtype of the forward / backward computation (bfloat16 for the paper presets on TPU/GPU).
      params: dtype the parameters are stored and updated in (float32).
      opt_state: dtype of optimiser moments (float32).
      keep_float32: NNX filter of trainable variables left in their stored dtype inside the computation.
    """

    compute: Any = jnp.float32
    params: Any = jnp.float32
    opt_state: Any = jnp.float32
    keep_float32: Any = nnx.Nothing

    @classmethod
    def from_config(cls, config: Any, *, keep_float32: Any = nnx.Nothing) -> Precision:
        """From ``compute_dtype`` / ``param_dtype`` / ``opt_state_dtype`` (absent keys: float32)."""
        get = config.get if hasattr(config, "get") else lambda k, d=None: getattr(config, k, d)
        return cls(compute=_dtype(get("compute_dtype", "float32"), "compute_dtype"),
                   params=_dtype(get("param_dtype", "float32"), "param_dtype"),
                   opt_state=_dtype(get("opt_state_dtype", "float32"), "opt_state_dtype"),
                   keep_float32=keep_float32)

    @property
    def is_mixed(self) -> bool:
        return jnp.dtype(self.compute) != jnp.dtype(self.params)

    def cast_params(self, model: nnx.Module, trainable: Any = nnx.Param) -> None:
        """Cast, in place, the ``trainable`` floating variables of ``model`` not matched by ``keep_float32`` to
        ``compute`` (inside a traced step: the cast is differentiated, gradients come back in the stored dtype), and
        set the computation ``dtype`` of its flax layers (``Linear``, ``Conv``, ``Embed``, norms) to ``compute``.
        Meant for the fresh module a step merges from its state."""
        if not self.is_mixed:
            return
        keep = nnx.filterlib.to_predicate(self.keep_float32)
        cast = nnx.filterlib.to_predicate(trainable)
        for path, node in nnx.iter_graph(model):
            if isinstance(node, _FLAX_LAYERS) and getattr(node, "dtype", None) is not None:
                node.dtype = self.compute  # their computation dtype (Embed, norms default to float32)
            if isinstance(node, nnx.Variable) and cast(path, node) and not keep(path, node):
                value = node[...]
                if jnp.issubdtype(value.dtype, jnp.floating):
                    node.set_value(value.astype(self.compute))

    def cast_batch(self, batch: Any) -> Any:
        """Floating leaves of ``batch`` to ``compute`` (integers, masks and uint8 images unchanged)."""
        if not self.is_mixed:
            return batch
        return jax.tree.map(lambda x: x.astype(self.compute) if jnp.issubdtype(x.dtype, jnp.floating) else x, batch)

    def cast_model_storage(self, model: nnx.Module) -> None:
        """Store ``model``'s floating ``nnx.Param`` values in ``params`` (call once before ``TrainState.create``)."""
        for _, node in nnx.iter_graph(model):
            if isinstance(node, nnx.Param) and jnp.issubdtype(node[...].dtype, jnp.floating):
                node.set_value(node[...].astype(self.params))

    def check_opt_state(self, opt_state: Any) -> None:
        """Raise if a floating optimiser-state leaf shaped like a parameter is not in ``opt_state`` dtype.

        Raises:
          TypeError: naming the first offending leaf.
        """
        for path, leaf in jax.tree_util.tree_flatten_with_path(opt_state)[0]:
            dt = getattr(leaf, "dtype", None)
            if dt is not None and np.ndim(leaf) > 0 and jnp.issubdtype(dt, jnp.floating) \
                    and jnp.dtype(dt) != jnp.dtype(self.opt_state):
                raise TypeError(f"optimiser state {jax.tree_util.keystr(path)} is {jnp.dtype(dt)}, the precision "
                                f"policy asks for {jnp.dtype(self.opt_state)} (build the optimiser with it, e.g. "
                                "optax.adamw(..., mu_dtype=precision.opt_state))")


def float32_outputs(tree: Any) -> Any:
    """Floating leaves of ``tree`` (losses, metrics) in float32."""
    return jax.tree.map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
                        and jnp.asarray(x).dtype != jnp.float64 else x, tree)
