"""The S4D optimiser recipe: SSM parameters (A, dt, B) get their own learning rate and no weight decay."""

from __future__ import annotations

import optax

from eigenkit.methods.s4d._layer import SSMOutputParam, SSMParam, SSMStepParam
from eigenkit.train import label_params

#: Top-level attributes of :class:`S4DModel` outside the official *backbone* (``encoder``, ``decoder``): the official
#: ``train.py`` applies ``add_optimizer_hooks`` (no weight decay on biases and normalisation parameters) to the backbone
#: only, so these keep the global weight decay on every parameter.
_OUTSIDE_BACKBONE = ("encoder", "decoder")


def _no_decay(path: str) -> bool:
    """Backbone bias or normalisation parameter (``layers/i/.../bias``, ``norms/i/{scale,bias}``)."""
    top = path.split("/", 1)[0]
    return top not in _OUTSIDE_BACKBONE and (path.endswith("bias") or top == "norms")


def s4d_param_labels(params, *, c_with_ssm_lr: bool = False, dt_with_ssm_lr: bool = True,
                     decay_bias_and_norm: bool = True):
    """Optimiser-group labels of an S4D model's (or layer's) parameters.

    * ``"ssm"``: :class:`SSMParam` (log_dt, log_A_real, A_imag, B) — SSM learning rate, weight decay 0;
    * ``"ssm_dt"``: :class:`SSMStepParam` log_dt when ``dt_with_ssm_lr=False`` — global learning rate, weight decay 0;
    * ``"ssm_c"``: :class:`SSMOutputParam` C when ``c_with_ssm_lr`` — SSM learning rate, global weight decay;
    * ``"no_decay"``: when ``decay_bias_and_norm=False``, the backbone's biases and normalisation parameters —
      global learning rate, weight decay 0;
    * ``"default"``: everything else.

    ``c_with_ssm_lr=True`` reproduces the official *scalar* ``lr`` configs (sCIFAR / Pathfinder / Path-X /
    ``s4d_example``): C also takes the SSM learning rate but keeps the global weight decay. ``False`` reproduces a
    *dict* ``lr`` (ListOps / Text / Retrieval): C is an ordinary parameter. ``dt_with_ssm_lr=False`` reproduces the
    dict ``lr: {dt: null, A: 0.001, B: 0.001}`` of ``configs/experiment/lra/s4-listops.yaml`` (official
    ``Kernel.register(lr=None, wd=0.0)``: global learning rate, no weight decay). ``decay_bias_and_norm=False``
    reproduces the official ``train.py`` (``optimizer_param_grouping: {bias_weight_decay: False,
    normalization_weight_decay: False}`` of ``configs/config.yaml``, applied by ``add_optimizer_hooks`` to the
    backbone, not to the encoder and decoder); the minimal ``example.py`` decays them (``True``).

    SSM groups are decided by Variable type; the backbone bias / norm group by the parameter's path in
    :class:`S4DModel` (``layers/...``, ``norms/...``), the one rule that is not a type.
    """
    types = {}
    if not dt_with_ssm_lr:
        types[SSMStepParam] = "ssm_dt"
    types[SSMParam] = "ssm"
    if c_with_ssm_lr:
        types[SSMOutputParam] = "ssm_c"

    def rule(path, variable):
        for t, label in types.items():
            if isinstance(variable, t):
                return label
        if not decay_bias_and_norm and _no_decay(path):
            return "no_decay"
        return None

    return label_params(params, rule, default="default")


def s4d_optimizer(
    params,
    *,
    lr: float,
    weight_decay: float,
    ssm_lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    c_with_ssm_lr: bool = False,
    dt_with_ssm_lr: bool = True,
    decay_bias_and_norm: bool = True,
    grad_clip: float | None = None,
) -> optax.GradientTransformation:
    """AdamW(lr, wd) for ordinary parameters; Adam(ssm_lr), wd 0, for (A, dt, B); warm-up + cosine on each group.

    Mirrors the official ``setup_optimizer`` / ``configure_optimizers`` (extra AdamW groups from per-tensor ``_optim``
    hints) and ``cosine_warmup`` / ``CosineAnnealingLR`` (each group decays from its own base rate to 0; linear
    warm-up from 0 over ``warmup_steps``). Groups and the meaning of ``c_with_ssm_lr``, ``dt_with_ssm_lr`` and
    ``decay_bias_and_norm``: see :func:`s4d_param_labels`.
    """

    def sched(peak):
        if warmup_steps > 0:
            return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, max(total_steps, warmup_steps + 1), 0.0)
        return optax.cosine_decay_schedule(peak, max(total_steps, 1))

    txs = {
        "default": optax.adamw(sched(lr), weight_decay=weight_decay),
        "ssm": optax.adamw(sched(ssm_lr), weight_decay=0.0),
    }
    if c_with_ssm_lr:
        txs["ssm_c"] = optax.adamw(sched(ssm_lr), weight_decay=weight_decay)
    if not dt_with_ssm_lr:
        txs["ssm_dt"] = optax.adamw(sched(lr), weight_decay=0.0)
    if not decay_bias_and_norm:
        txs["no_decay"] = optax.adamw(sched(lr), weight_decay=0.0)
    labels = s4d_param_labels(params, c_with_ssm_lr=c_with_ssm_lr, dt_with_ssm_lr=dt_with_ssm_lr,
                              decay_bias_and_norm=decay_bias_and_norm)
    tx = optax.multi_transform(txs, labels)
    if grad_clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(grad_clip), tx)
    return tx
