"""Load the official Graph-COM/SPE PyTorch weights (a ``state_dict`` as NumPy arrays) into the eigenkit modules.

Official modules and their eigenkit counterparts (Graph-COM/SPE @ 22b1003; paper names, the code swaps φ and ρ):

========================================================  ==========================================================
official ``state_dict`` key                               eigenkit variable
========================================================  ==========================================================
**SPE** (``StableExpressivePE(GINPhi, psi_list)``)        :class:`SPE`
``psi_list.{ℓ}.layers.{i}.fc.weight`` ``[out, in]``       ``phi.ws[i][ℓ]`` ``[in, out]`` (transposed, stacked over ℓ)
``psi_list.{ℓ}.layers.{i}.fc.bias`` ``[out]``             ``phi.bs[i][ℓ]``
``psi_list.{ℓ}.layers.{i}.bn.{weight, bias, running_*}``  ``phi.norms[i].{scale, bias, mean, var}[ℓ·h:(ℓ+1)·h]``
``psi_list.{ℓ}.fc.{weight, bias}``                        ``phi.ws[-1][ℓ]`` (transposed), ``phi.bs[-1][ℓ]``
``phi.gin.layers.{k}.eps`` ``[1]``                        ``rho[k].eps`` ``[1]``
``phi.gin.layers.{k}.mlp.*`` (official ``MLP``)           ``rho[k].mlp`` (see MLP below)
``phi.mlp.*``                                             none: ``GINPhi`` builds an output MLP it never calls
                                                          (spe.md quirk 3); ignored
**MLP** (``src/mlp.py``)                                  :class:`eigenkit.nn.MLP`
``layers.{i}.fc.weight`` / ``.bias``                      ``hidden[i].kernel`` (transposed) / ``hidden[i].bias``
``layers.{i}.bn.*``                                       ``norms[i]``
``fc.weight`` / ``fc.bias``                               ``out.kernel`` (transposed) / ``out.bias``
**Model** (``src/model.py``, ``GINEBaseModel``)           :class:`PEGraphRegressor` with ``PEKind.SPE``
``node_features.weight`` ``[types, width]``               ``backbone.node_embed.embedding`` (same layout)
``pe_embedding.weight`` / ``.bias``                       ``backbone.pe_embed.kernel`` (transposed) / ``.bias``
``positional_encoding.*``                                 ``spe`` (the SPE keys above)
``base_model.gine.layers.{k}.eps``                        ``backbone.gine.layers[k].eps``
``base_model.gine.layers.{k}.edge_features.weight``       ``backbone.gine.layers[k].edge_embed.embedding``
``base_model.gine.layers.{k}.pe_embedding.*``             ``backbone.gine.layers[k].pe_mlp`` (MLP)
``base_model.gine.layers.{k}.mlp.*``                      ``backbone.gine.layers[k].mlp`` (MLP)
``base_model.mlp.*``                                      ``backbone.head`` (MLP)
========================================================  ==========================================================

Conventions:

* torch ``nn.Linear.weight`` is ``[out, in]``; Flax kernels are ``[in, out]``: every Linear weight is transposed.
  Embedding tables (``[rows, features]``) and GIN ``eps`` (``[1]``) are copied as they are.
* BatchNorm: ``weight → scale``, ``bias → bias``, ``running_mean → mean``, ``running_var → var`` (torch stores the
  unbiased running variance, as :class:`eigenkit.nn.MaskedBatchNorm` does). ``num_batches_tracked`` is ignored
  (eigenkit uses torch's default ``momentum = 0.1``; a torch model trained with ``momentum=None`` — cumulative
  averages — has no counterpart). torch's ``eps`` is not in a ``state_dict``; both default to ``1e-5``.
* φ networks: the ``m`` official ``psi_list`` MLPs are stacked in list order ``ℓ = 0 … m − 1`` on the leading axis
  of ``EigenvalueNets.ws[i] [m, in, out]`` / ``bs[i] [m, out]``; the BatchNorm of φ-layer ``i`` is one
  :class:`~eigenkit.nn.MaskedBatchNorm` over ``m · h`` features, feature ``ℓ·h + c`` = channel ``c`` of φ_ℓ, i.e.
  the concatenation of ``psi_list.{ℓ}.layers.{i}.bn.*`` in list order. With ``EigenvalueNetKind.ONES`` (official
  ``ZeroPsi``, no parameters) no ``psi_list`` keys are read.
* Values are cast to each variable's dtype (``param_dtype``); shapes must match exactly.
* Official options without an eigenkit counterpart fail as unused keys: GIN / GINE ``bn=True``
  (``…batch_norms.*``), ``pe_aggregate="concat"`` (``fc.*``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

from eigenkit.methods.spe._model import SPE, EigenvalueNetKind, PEGraphRegressor, PEKind

__all__ = ["load_official_state_dict"]

_MAX_LISTED = 12


@dataclass(frozen=True)
class _Target:
    """One eigenkit variable filled from one or more official keys."""

    var: nnx.Variable
    where: str                                # eigenkit path, for messages
    keys: tuple[str, ...]                     # official keys (several for the stacked φ)
    shapes: tuple[tuple[int, ...], ...]       # their expected official shapes
    combine: Callable[[list[np.ndarray]], np.ndarray]
    note: str = ""                            # layout hint for shape errors


def _one(a):
    return a[0]


def _transposed(a):
    return a[0].T


class _Plan:
    def __init__(self):
        self.targets: list[_Target] = []
        self.ignored_prefixes: list[str] = []

    def add(self, var, where, keys, shapes, combine, note=""):
        self.targets.append(_Target(var, where, tuple(keys), tuple(tuple(s) for s in shapes), combine, note))

    def copy(self, var, where, key):
        self.add(var, where, [key], [var[...].shape], _one)

    def linear(self, lin: nnx.Linear, where: str, key: str):
        kernel = lin.kernel[...]
        self.add(lin.kernel, f"{where}.kernel", [f"{key}.weight"], [kernel.shape[::-1]], _transposed,
                 f"; torch Linear weight [out, in] of the [in, out] kernel {kernel.shape}")
        if lin.bias is not None:
            self.copy(lin.bias, f"{where}.bias", f"{key}.bias")

    def batch_norm(self, bn, where: str, key: str):
        for ours, theirs in (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"),
                             ("var", "running_var")):
            self.copy(getattr(bn, ours), f"{where}.{ours}", f"{key}.{theirs}")

    def mlp(self, mlp, where: str, key: str):
        for i in range(len(mlp.hidden)):
            self.linear(mlp.hidden[i], f"{where}.hidden[{i}]", f"{key}.layers.{i}.fc")
            if len(mlp.norms):
                self.batch_norm(mlp.norms[i], f"{where}.norms[{i}]", f"{key}.layers.{i}.bn")
        self.linear(mlp.out, f"{where}.out", f"{key}.fc")

    def eigenvalue_nets(self, nets, where: str, key: str):
        if nets.kind is EigenvalueNetKind.ONES:
            return
        m, last = nets.n_nets, len(nets.ws) - 1
        for i in range(len(nets.ws)):
            layer = f"layers.{i}." if i < last else ""
            _, a, b = nets.ws[i][...].shape
            self.add(nets.ws[i], f"{where}.ws[{i}]", [f"{key}{l}.{layer}fc.weight" for l in range(m)],
                     [(b, a)] * m, lambda xs: np.stack([x.T for x in xs]),
                     f"; torch Linear weight [out, in] of φ_ℓ, stacked over ℓ into [m, in, out] = {(m, a, b)}")
            self.add(nets.bs[i], f"{where}.bs[{i}]", [f"{key}{l}.{layer}fc.bias" for l in range(m)],
                     [(b,)] * m, np.stack)
            if i < last and nets.use_bn:
                bn = nets.norms[i]
                for ours, theirs in (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"),
                                     ("var", "running_var")):
                    self.add(getattr(bn, ours), f"{where}.norms[{i}].{ours}",
                             [f"{key}{l}.layers.{i}.bn.{theirs}" for l in range(m)], [(b,)] * m, np.concatenate)

    def spe(self, model: SPE, where: str, key: str):
        self.eigenvalue_nets(model.phi, f"{where}phi", f"{key}psi_list.")
        for k, layer in enumerate(model.rho):
            self.copy(layer.eps, f"{where}rho[{k}].eps", f"{key}phi.gin.layers.{k}.eps")
            self.mlp(layer.mlp, f"{where}rho[{k}].mlp", f"{key}phi.gin.layers.{k}.mlp")
        self.ignored_prefixes.append(f"{key}phi.mlp.")  # GINPhi's unused output MLP (quirk 3)

    def regressor(self, model: PEGraphRegressor):
        if model.pe_kind is not PEKind.SPE:
            raise ValueError(f"load_official_state_dict maps the official SPE Model; model.pe_kind must be "
                             f"PEKind.SPE, got {model.pe_kind}")
        bb = model.backbone
        self.copy(bb.node_embed.embedding, "backbone.node_embed.embedding", "node_features.weight")
        self.linear(bb.pe_embed, "backbone.pe_embed", "pe_embedding")
        self.spe(model.spe, "spe.", "positional_encoding.")
        for k, layer in enumerate(bb.gine.layers):
            where, key = f"backbone.gine.layers[{k}]", f"base_model.gine.layers.{k}"
            self.copy(layer.eps, f"{where}.eps", f"{key}.eps")
            self.copy(layer.edge_embed.embedding, f"{where}.edge_embed.embedding", f"{key}.edge_features.weight")
            self.mlp(layer.pe_mlp, f"{where}.pe_mlp", f"{key}.pe_embedding")
            self.mlp(layer.mlp, f"{where}.mlp", f"{key}.mlp")
        self.mlp(bb.head, "backbone.head", "base_model.mlp")


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def load_official_state_dict(model: SPE | PEGraphRegressor, state_dict: Mapping[str, np.ndarray], *,
                             prefix: str = "") -> SPE | PEGraphRegressor:
    """Copy an official Graph-COM/SPE PyTorch ``state_dict`` (as NumPy arrays) into ``model``, in place.

    Two official layouts are understood (key table and conventions in the module docstring):

    * ``model`` an :class:`SPE`: the keys of ``StableExpressivePE(GINPhi(...), psi_list)`` — the φ networks
      (official ``psi_list``, MLP φ) and the ρ GIN (official ``phi.gin``);
    * ``model`` a :class:`PEGraphRegressor` with ``PEKind.SPE``: the keys of the official ZINC ``Model`` (node
      embedding, ``pe_embedding``, ``positional_encoding.*`` = the SPE keys, ``base_model`` = GINE layers and
      the output MLP).

    Everything is checked before anything is written, so on error ``model`` is unchanged. Build ``model`` with the
    official sizes (``SPE(n_phi=n_psis, pe_dims, phi_layers=n_psi_layers, phi_hidden=psi_hidden_dims,
    rho_layers=n_phi_layers, rho_hidden=phi_hidden_dims, n_mlp_layers=n_mlp_layers)``), and for train-mode parity
    ``bn_mode=BatchNormMode.OFFICIAL``. NNX modules are mutable, so this loads in place as ``nnx.update`` does;
    ``nnx.split(model)`` afterwards for a functional workflow.

    Args:
      model: the eigenkit module to fill.
      state_dict: official key → array, e.g. ``{k: v.detach().cpu().numpy() for k, v in
        torch_model.state_dict().items()}`` (``num_batches_tracked`` entries may be left in; they are ignored).
      prefix: read only the keys starting with ``prefix`` (stripped first); other keys are ignored. E.g.
        ``prefix="positional_encoding."`` loads the SPE of a whole official ``Model`` into an :class:`SPE`.

    Returns:
      ``model`` (the same object), for chaining.

    Raises:
      ValueError: a key the model needs is missing, a key has no place in the model (unused), or an array has the
        wrong shape — every such key is listed with its expected (official) shape and the eigenkit variable it
        fills; or ``model`` is a :class:`PEGraphRegressor` whose PE is not ``PEKind.SPE``.
      TypeError: ``model`` is neither an :class:`SPE` nor a :class:`PEGraphRegressor`.

    Example:
      A one-layer ρ with φ ≡ 1 (official ``ZeroPsi``, no φ parameters) and no BatchNorm, to keep the keys few:

      >>> import numpy as np
      >>> from flax import nnx
      >>> from eigenkit.methods.spe import SPE, EigenvalueNetKind, load_official_state_dict
      >>> m = SPE(n_phi=1, pe_dims=2, rho_layers=1, rho_hidden=4, n_mlp_layers=2, use_bn=False,
      ...         phi_kind=EigenvalueNetKind.ONES, rngs=nnx.Rngs(0))
      >>> pre = "phi.gin.layers.0."
      >>> sd = {pre + "eps": np.zeros(1), pre + "mlp.layers.0.fc.weight": np.ones((4, 1)),
      ...       pre + "mlp.layers.0.fc.bias": np.zeros(4), pre + "mlp.fc.weight": np.ones((2, 4)),
      ...       pre + "mlp.fc.bias": np.zeros(2)}
      >>> load_official_state_dict(m, sd).rho[0].mlp.out.kernel[...].shape   # torch [out, in] -> [in, out]
      (4, 2)
      >>> sd[pre + "mlp.fc.weight"] = np.ones((4, 2))
      >>> load_official_state_dict(m, sd)
      Traceback (most recent call last):
      ...
      ValueError: official state_dict does not fit SPE: 1 wrong shape: 'phi.gin.layers.0.mlp.fc.weight' has
      shape (4, 2), expected (2, 4) (for rho[0].mlp.out.kernel; torch Linear weight [out, in] ...
    """
    plan = _Plan()
    if isinstance(model, PEGraphRegressor):
        plan.regressor(model)
    elif isinstance(model, SPE):
        plan.spe(model, "", "")
    else:
        raise TypeError(f"model must be an eigenkit.methods.spe SPE or PEGraphRegressor, got {type(model).__name__}")

    sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    arrays = {k: np.asarray(v) for k, v in sd.items()}
    used: set[str] = set()
    missing, wrong = [], []
    for t in plan.targets:
        for key, shape in zip(t.keys, t.shapes):
            used.add(key)
            if key not in arrays:
                missing.append(f"{prefix + key!r} (shape {shape}, for {t.where})")
            elif arrays[key].shape != shape:
                wrong.append(f"{prefix + key!r} has shape {arrays[key].shape}, expected {shape} (for {t.where}"
                             f"{t.note})")
    unused = [f"{prefix + k!r} (shape {arrays[k].shape})" for k in sorted(arrays)
              if k not in used and not k.endswith("num_batches_tracked")
              and not any(k.startswith(p) for p in plan.ignored_prefixes)]
    problems = []
    for label, items in (("missing key", sorted(missing)), ("unused key", unused), ("wrong shape", sorted(wrong))):
        if items:
            problems.append(f"{len(items)} {label}{'s' if len(items) > 1 else ''}: {_listing(items)}")
    if problems:
        hint = ("; unused keys have no place in this eigenkit model (other sizes / number of φ nets, or an official "
                "option without a counterpart: GIN/GINE bn=True 'batch_norms', pe_aggregate='concat' 'fc')"
                if unused else "")
        raise ValueError(f"official state_dict does not fit {type(model).__name__}: " + "; ".join(problems) + hint)
    for t in plan.targets:
        value = np.asarray(t.combine([arrays[k] for k in t.keys]))
        current = t.var[...]
        if value.shape != current.shape:  # pragma: no cover - guaranteed by the shapes checked above
            raise AssertionError(f"{t.where}: built shape {value.shape}, variable has {current.shape}")
        t.var[...] = jnp.asarray(value.astype(current.dtype))
    return model
