"""The training state: an NNX module split into graph / trainable params / everything else, plus optax state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    """Functional NNX training state (eigenkit/ARCHITECTURE.md rule 9: split -> pure jitted step -> merge).

    Attributes:
      step: int32 scalar, number of optimiser updates done.
      params: ``nnx.State`` of the ``trainable`` variables (default ``nnx.Param``); the only leaves the optimiser sees.
      rest: ``nnx.State`` of everything else (BatchNorm statistics, RNG counters, non-trainable bases/anchors declared
        as their own ``nnx.Variable`` subclasses). Updated by the forward pass, never by the optimiser, never decayed.
      opt_state: the optax state of ``tx`` on ``params``.
      graphdef: the static module structure (not a pytree leaf).
      tx: the optax ``GradientTransformation`` (static).
      trainable: the NNX filter that selected ``params`` (static). :func:`make_train_step` splits the model with
        this same filter after every forward pass, so variables excluded from training (e.g. a frozen
        ``nnx.Param`` subclass) stay in ``rest``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from flax import nnx
      >>> from eigenkit import train
      >>> class Frozen(nnx.Param): pass
      >>> class Net(nnx.Module):
      ...     def __init__(self):
      ...         self.w = nnx.Param(jnp.ones((3, 2)))
      ...         self.anchors = Frozen(jnp.zeros((2,)))   # a parameter type we do not train
      ...     def __call__(self, x):
      ...         return x @ self.w[...] + self.anchors[...]
      >>> state = train.TrainState.create(Net(), optax.sgd(0.1), trainable=nnx.All(nnx.Param, nnx.Not(Frozen)))
      >>> sorted(state.params.keys()), sorted(state.rest.keys())
      (['w'], ['anchors'])
    """

    step: jax.Array
    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    graphdef: nnx.GraphDef = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    trainable: Any = flax.struct.field(pytree_node=False, default=nnx.Param)

    @classmethod
    def create(
        cls,
        model: nnx.Module,
        tx: optax.GradientTransformation,
        *,
        mesh: Mesh | None = None,
        trainable: Any = nnx.Param,
    ) -> TrainState:
        """Split ``model`` and initialise ``tx``; with ``mesh``, everything is replicated on its devices.

        Args:
          model: an ``nnx.Module`` (not a state dict) with at least one variable selected by ``trainable``.
          tx: the optimiser for the selected variables.
          mesh: optional mesh to replicate the state on.
          trainable: NNX filter of the trained variables (default every ``nnx.Param``).

        Raises:
          TypeError: ``model`` is not an ``nnx.Module`` or ``tx`` is not an optax ``GradientTransformation``.
          ValueError: no variable of ``model`` matches ``trainable`` (the optimiser would train nothing).
        """
        if not isinstance(model, nnx.Module):
            raise TypeError(f"model must be an nnx.Module, got {type(model).__name__}; build the module first "
                            "(a dict or nnx.State of parameters cannot be merged back into a model)")
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(f"tx must be an optax.GradientTransformation, got {type(tx).__name__}")
        graphdef, params, rest = nnx.split(model, trainable, ...)
        if not jax.tree.leaves(params):
            raise ValueError(f"no variable of {type(model).__name__} matches trainable={trainable!r}; the optimiser "
                             "would train nothing (declare weights as nnx.Param or pass another filter)")
        state = cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            rest=rest,
            opt_state=tx.init(params),
            graphdef=graphdef,
            tx=tx,
            trainable=trainable,
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


def label_params(params: Any, rules: Mapping[type, str] | Callable[[str, Any], str | None], *,
                 default: str) -> Any:
    """Labels for ``optax.multi_transform`` / ``optax.partition``, one per Variable of ``params``.

    The one optimiser-group mechanism of eigenkit: groups are decided by **Variable type** (a method declares its
    special parameters as ``nnx.Param`` subclasses, e.g. ``GrassmannParam`` or S4D's ``SSMParam``) or, where a recipe
    needs it, by a callable — never by regular expressions over names.

    Args:
      params: an ``nnx.State`` (e.g. ``TrainState.params`` or ``nnx.state(model, nnx.Param)``).
      rules: either a mapping ``{VariableType: label}`` (the first type ``isinstance``-matching a Variable names its
        group, so list subclasses before their bases), or a callable ``rule(path, variable) -> label | None`` where
        ``path`` is the ``'a/b/c'`` name of the Variable (see :func:`param_path`); ``None`` means ``default``.
      default: label of the Variables no rule matches.

    Returns:
      A prefix tree of ``params`` with a string label per Variable.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from flax import nnx
      >>> from eigenkit import train
      >>> class Slow(nnx.Param): pass
      >>> class Net(nnx.Module):
      ...     def __init__(self):
      ...         self.w, self.b = nnx.Param(jnp.ones(3)), Slow(jnp.zeros(1))
      >>> labels = train.label_params(nnx.state(Net(), nnx.Param), {Slow: "slow"}, default="fast")
      >>> labels["b"], labels["w"]
      ('slow', 'fast')
      >>> tx = optax.multi_transform({"slow": optax.sgd(1e-3), "fast": optax.sgd(1e-1)}, labels)

    Raises:
      TypeError: ``rules`` is neither a callable nor a mapping of ``nnx.Variable`` subclasses to labels.
    """
    if callable(rules) and not isinstance(rules, Mapping):
        rule = rules
    elif isinstance(rules, Mapping):
        bad = [k for k in rules if not (isinstance(k, type) and issubclass(k, nnx.Variable))]
        if bad:
            raise TypeError(f"rules keys must be nnx.Variable subclasses (got {bad!r}); to select by name pass a "
                            "callable rule(path, variable) -> label | None")
        types = list(rules.items())

        def rule(_path, var):
            return next((lab for t, lab in types if isinstance(var, t)), None)
    else:
        raise TypeError(f"rules must be a mapping {{VariableType: label}} or a callable, got {type(rules).__name__}")

    def label(path, var):
        lab = rule(param_path(path), var)
        return default if lab is None else lab

    return jax.tree_util.tree_map_with_path(label, params, is_leaf=lambda x: isinstance(x, nnx.Variable))
