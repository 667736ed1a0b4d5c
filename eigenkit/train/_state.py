"""The training state: an NNX module split into graph / trainable params / everything else, plus optax state."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from eigenkit.train._mesh import replicated_sharding


@flax.struct.dataclass
class TrainState:
    """Functional NNX training state (ARCHITECTURE.md rule 9: split -> pure jitted step -> merge).

    Attributes:
      step: int32 scalar, number of optimiser updates done.
      params: ``nnx.State`` of the ``trainable`` variables (default ``nnx.Param``); the only leaves the optimiser sees.
      rest: ``nnx.State`` of everything else (BatchNorm statistics, RNG counters, non-trainable bases/anchors declared
        as their own ``nnx.Variable`` subclasses). Updated by the forward pass, never by the optimiser, never decayed.
      opt_state: the optax state of ``tx`` on ``params``.
      graphdef: the static module structure (not a pytree leaf).
      tx: the optax ``GradientTransformation`` (static).
    """

    step: jax.Array
    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    graphdef: nnx.GraphDef = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    @classmethod
    def create(
        cls,
        model: nnx.Module,
        tx: optax.GradientTransformation,
        *,
        mesh: Mesh | None = None,
        trainable: Any = nnx.Param,
    ) -> TrainState:
        """Split ``model`` and initialise ``tx``; with ``mesh``, everything is replicated on its devices."""
        graphdef, params, rest = nnx.split(model, trainable, ...)
        state = cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            rest=rest,
            opt_state=tx.init(params),
            graphdef=graphdef,
            tx=tx,
        )
        if mesh is not None:
            state = jax.device_put(state, replicated_sharding(mesh))
        return state

    def model(self, *, train: bool = False) -> nnx.Module:
        """A fresh module holding this state's values, in train or eval mode (``Module.train()/.eval()``)."""
        model = nnx.merge(self.graphdef, self.params, self.rest)
        model.train() if train else model.eval()
        return model

    def checkpoint_items(self) -> dict[str, Any]:
        """The array pytree that is checkpointed (everything but the static graph and optimiser)."""
        return {"step": self.step, "params": self.params, "rest": self.rest, "opt_state": self.opt_state}

    def replace_items(self, items: Mapping[str, Any]) -> TrainState:
        return self.replace(step=items["step"], params=items["params"], rest=items["rest"],
                            opt_state=items["opt_state"])


def param_path(path) -> str:
    """``'block/0/kernel'``-style name of a pytree key path (Variable wrappers dropped)."""
    parts = []
    for k in path:
        name = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
        if name is None or name == "value":
            continue
        parts.append(str(name))
    return "/".join(parts)


def label_params(params: Any, rules: Mapping[str, str], *, default: str) -> Any:
    """Labels for ``optax.multi_transform`` / ``optax.partition``: the first regex in ``rules`` that
    ``re.search``-matches a leaf's ``'a/b/c'`` path names its group, else ``default``.

    Example:
      >>> labels = label_params(state.params, {r"(^|/)(log_dt|A_re|A_im|B)$": "ssm"}, default="adamw")
      >>> tx = optax.multi_transform({"ssm": optax.adam(1e-3), "adamw": optax.adamw(1e-2)}, labels)

    Raises:
      ValueError: a rule's regex is invalid.
    """
    compiled = []
    for pattern, label in rules.items():
        try:
            compiled.append((re.compile(pattern), label))
        except re.error as e:
            raise ValueError(f"rules key {pattern!r} is not a valid regular expression: {e}") from e

    def label(path, _):
        name = param_path(path)
        for rx, lab in compiled:
            if rx.search(name):
                return lab
        return default

    return jax.tree_util.tree_map_with_path(label, params)
