"""S4D on LRA ListOps (study ``s4d.listops``): the official LRA ListOps recipe, and a generated smoke replica.

    python -m experiments run s4d.listops --preset paper --config.data_dir=/path/to/lra_release/listops-1000
    python -m experiments run s4d.listops --preset paper --config.listops_generate_n=100000   (generated, no files)
    python -m experiments run s4d.listops --preset smoke                                       (seconds, generated)

Source of truth: ``configs/experiment/lra/s4-listops.yaml`` of ``state-spaces/s4`` @ ``e757cef57d89`` (with
``configs/pipeline/{listops,imdb}.yaml``, ``configs/dataset/listops.yaml``, ``configs/model/layer/s4.yaml``,
``configs/config.yaml``), run as S4D with ``model.layer.mode=diag model.layer.init=diag-lin``: token embedding
(vocabulary 18), 6 x H = 256, N = 4, bidirectional, ``n_ssm: 1``, softplus ``dt`` in [1e-3, 1e-1], post-norm
BatchNorm, no dropout, mean pool over the valid positions (``decoder.mode: pool``, ``use_lengths: true``), l_max 2048
with an ``<eos>`` token; AdamW lr 0.01, weight decay 0.05 (none on the backbone's biases and norm parameters), the
dict SSM lr ``{dt: null, A: 0.001, B: 0.001}`` (dt on the global lr, weight decay 0; C an ordinary parameter);
batch 32; 120,000 steps (40 epochs of 96,000) with 12,000 warm-up steps, then cosine to 0. Validation accuracy
(2,000) every epoch, test accuracy (2,000) at the end.

Deviation: sequences are padded to ``l_max`` = 2048 (one compiled shape), the official collate pads each batch to its
longest sequence; as in the official code the backbone sees the padding (only the pool is masked), so a
bidirectional layer's outputs at the valid positions depend slightly on the amount of padding.
"""

from __future__ import annotations

import ml_collections

from experiments.s4d import train as _train
from experiments.s4d.configs import cpu

PRESETS = ("smoke", "paper")
STEPS_PER_EPOCH = 96000 // 32


def get_config(preset: str) -> ml_collections.ConfigDict:
    """paper: the official recipe (needs the TSV files, or ``listops_generate_n``); smoke: 2 steps of a tiny model on
    160 generated short expressions."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    c = cpu.get_config()
    c.update(dict(
        description="S4D-Lin 6 x H=256, N=4, bidirectional, LRA ListOps (L <= 2048), official LRA recipe, 40 epochs",
        expected_runtime="~2-4 h on one A100/H100 (estimate from the model size, ~0.3 TFLOP per step x 120k steps; "
                         "not run here)",
        expected_device="1x A100 40GB / H100 or TPU v4-8 (batch 32 must divide by the device count)",
        expected_memory="~5-10 GB accelerator (estimate: activations of 6 layers at batch 32 x 2048 x 256, FFT "
                        "length 4096), ~3 GB host (the int32 token matrix 96,000 x 2048)",
        dataset="listops", data_dir="", l_max=2048, n_train=0, n_val=0, n_test=0,
        # offline generator (used when data_dir is ""): LRA's defaults
        listops_generate_n=0, listops_seed=0, listops_max_depth=10, listops_max_args=10, listops_min_length=500,
        listops_max_length=2000,
        # model (enums by name: Norm, ssm.Init, ssm.Discretization, Transform)
        d_model=256, d_state=4, n_layers=6, dropout=0.0, prenorm=False, norm="batch", init="lin",
        discretization="zoh", bidirectional=True, n_ssm=1, dt_transform="softplus", dt_min=1e-3, dt_max=1e-1,
        # optimiser
        learning_rate=1e-2, weight_decay=5e-2, ssm_lr=1e-3, c_with_ssm_lr=False, dt_with_ssm_lr=False,
        decay_bias_and_norm=False,
        batch_size=32, eval_batch_size=128, num_steps=40 * STEPS_PER_EPOCH, warmup_steps=4 * STEPS_PER_EPOCH,
        log_every=100, eval_every=STEPS_PER_EPOCH, checkpoint_every=STEPS_PER_EPOCH,
        baseline=True, baseline_max_iter=1000,
        input_pipeline="grain", grain_workers=0,  # train.grain_batches over the token arrays (position checkpointed)
        compute_dtype="bfloat16",  # train.Precision: bf16 activations, float32 parameters / SSM kernel / FFT / Adam
    ))
    if preset == "smoke":
        c.update(dict(
            description="S4D ListOps smoke: 2 x H=8, N=4, 160 generated expressions of 10-60 tokens, 2 steps",
            expected_runtime="< 1 min on 2 CPU cores", expected_device="any (2 CPU cores suffice)",
            expected_memory="< 1 GB host", l_max=64, listops_generate_n=160, listops_max_depth=4,
            listops_min_length=10, listops_max_length=60, d_model=8, n_layers=2, batch_size=16, eval_batch_size=16,
            num_steps=2, warmup_steps=0, log_every=1, eval_every=0, checkpoint_every=0, baseline=False,
        ))
    return c


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
    return _train.train_and_evaluate(config, workdir)
