"""The S4D optimiser recipe: SSM parameters (A, dt, B) get their own learning rate and no weight decay."""

from __future__ import annotations

import optax

from eigenkit.methods.s4d._layer import SSMOutputParam, SSMParam
from eigenkit.train import label_params


def s4d_param_labels(params, *, c_with_ssm_lr: bool = False):
    """Labels ``"ssm"`` (:class:`SSMParam`: log_dt, log_A_real, A_imag, B), ``"ssm_c"`` (:class:`SSMOutputParam` C,
    only if ``c_with_ssm_lr``), ``"default"`` (everything else) — by Variable type, not by name.

    ``c_with_ssm_lr=True`` reproduces the official *scalar* ``lr`` configs (sCIFAR / Pathfinder / Path-X /
    ``s4d_example``): C also takes the SSM learning rate but keeps the global weight decay. ``False`` reproduces a
    *dict* ``lr`` (ListOps / Text / Retrieval): C is an ordinary parameter.
    """
    rules = {SSMParam: "ssm"}
    if c_with_ssm_lr:
        rules[SSMOutputParam] = "ssm_c"
    return label_params(params, rules, default="default")


def s4d_optimizer(
    params,
    *,
    lr: float,
    weight_decay: float,
    ssm_lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    c_with_ssm_lr: bool = False,
    grad_clip: float | None = None,
) -> optax.GradientTransformation:
    """AdamW(lr, wd) for ordinary parameters; Adam(ssm_lr), wd 0, for (A, dt, B); warm-up + cosine on each group.

    Mirrors the official ``setup_optimizer`` (extra AdamW groups from per-tensor ``_optim`` hints) and
    ``CosineAnnealingLR`` (each group decays from its own base rate).
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
    tx = optax.multi_transform(txs, s4d_param_labels(params, c_with_ssm_lr=c_with_ssm_lr))
    if grad_clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(grad_clip), tx)
    return tx
