"""paper preset: S4D-Lin on sequential CIFAR-10 with the official LRA Image recipe.

Command (the CIFAR-10 *python* pickles, ``cifar-10-batches-py`` of https://www.cs.toronto.edu/~kriz/cifar.html)::

    python -m experiments run s4d --preset paper --config.data_dir=/path/to/cifar-10-batches-py

Source of truth: ``configs/experiment/lra/s4-cifar.yaml`` of ``state-spaces/s4`` @ ``e757cef57d89`` (with
``configs/dataset/cifar.yaml``, ``configs/model/layer/s4.yaml``, ``configs/config.yaml``), run as S4D with
``model.layer.mode=diag model.layer.init=diag-lin``: grey-level sCIFAR (``grayscale: true``, L = 1024, d_input = 1),
6 x H = 512, N = 64, bidirectional, ``n_ssm: 1``, softplus ``dt``, dt in [1e-3, 1e-1], post-norm BatchNorm, dropout
0.1, mean pooling; AdamW lr 0.01, weight decay 0.05 (none on the backbone's biases and norm parameters), the scalar
SSM lr 0.001 on dt, A, B and C (C keeps the weight decay); batch 50; 180,000 steps = 200 epochs of the 45,000
training images (10 % held out for validation) with 18,000 linear warm-up steps, then cosine to 0. Validation
accuracy every epoch, test accuracy (10,000 images) at the end.

Overrides: ``--config.init=legs`` (S4D-LegS, what ``init: legs`` with ``mode=diag`` gives), ``--config.init=inv``;
``--config.grayscale=False`` feeds RGB pixels (d_input = 3, the non-LRA sCIFAR of the S4D paper's Table, whose
official config ``configs/experiment/cifar/s4-cifar.yaml`` also differs in ``norm: layer``, ``n_ssm: 2``, a dict
SSM lr (C on the global lr: ``--config.c_with_ssm_lr=False``) and 900 warm-up steps).
Batch 50 runs on one device; on a mesh of ``d`` devices use a batch size divisible by ``d``.
"""

from experiments.s4d.configs import cpu

STEPS_PER_EPOCH = 45000 // 50


def get_config():
    c = cpu.get_config()
    c.update(dict(
        description="S4D-Lin 6 x H=512, N=64, bidirectional, sequential CIFAR-10 (grey, L=1024), LRA Image recipe, "
                    "200 epochs",
        expected_runtime="~4-8 h on one A100/H100 (estimate from the model size, ~1 TFLOP per step x 180k steps; "
                         "not run here)",
        expected_device="1x A100 40GB / H100 or TPU v4-8 (batch 50 must divide by the device count)",
        expected_memory="~10-20 GB accelerator (estimate: activations of 6 layers at batch 50 x 1024 x 512, FFT "
                        "length 2048), ~4 GB host (the float32 dataset)",
        dataset="cifar10", data_dir="", grayscale=True, val_split=0.1, val_seed=42, n_train=0, n_val=0, n_test=0,
        input_pipeline="grain", grain_workers=0,  # train.grain_batches over the pixel arrays (position checkpointed)
        compute_dtype="bfloat16",  # train.Precision: bf16 activations, float32 parameters / SSM kernel / FFT / Adam
        # model (enums by name: Norm, ssm.Init, ssm.Discretization, Transform)
        d_model=512, d_state=64, n_layers=6, dropout=0.1, prenorm=False, norm="batch", init="lin",
        discretization="zoh", bidirectional=True, n_ssm=1, dt_transform="softplus", dt_min=1e-3, dt_max=1e-1,
        # optimiser
        learning_rate=1e-2, weight_decay=5e-2, ssm_lr=1e-3, c_with_ssm_lr=True, dt_with_ssm_lr=True,
        decay_bias_and_norm=False,
        batch_size=50, eval_batch_size=250, num_steps=200 * STEPS_PER_EPOCH, warmup_steps=20 * STEPS_PER_EPOCH,
        log_every=100, eval_every=STEPS_PER_EPOCH, checkpoint_every=STEPS_PER_EPOCH,
        baseline=True, baseline_max_iter=1000,
    ))
    return c
