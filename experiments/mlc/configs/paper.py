"""paper preset: the MLC recipe on CIFAR-10 (or CIFAR-20 / CIFAR-100) with a CIFAR ResNet-18, d = 128, two views.

Command (your copy of the *python* CIFAR pickles: ``cifar-10-batches-py``, or ``cifar-100-python`` for
``dataset=cifar20`` (coarse labels) / ``cifar100``)::

    python -m experiments run mlc --preset paper --config.data_dir=DIR [--config.dataset=cifar20]

What is the paper's and what is not (the appendix with ε, η, learning rates, epochs and augmentations was not
available; see ../shared/methods/mlc.md):

* paper §4: ResNet-18 backbone, d = 128, A = 2 augmentations, TCR pre-training then MLC, spectral clustering of Γ;
  CPP (the authors' follow-up code): trunk Linear–BN–ReLU–Linear–ReLU of width 4096, ε² = 0.1, η = 0.175 (CIFAR-10),
  5 Sinkhorn steps, ½‖Γ‖² weight 0.05, batch 1024, SGD momentum 0.9, cluster-head weight decay 5e-3;
* TCR ε² = 0.5 is NMCE's; SimCLR's augmentations (crop area ≥ 0.08, flip, colour jitter, grayscale);
* **estimates, not the paper's**: 500 TCR epochs and 30 MLC epochs (the paper's Table 5 gives MLC's stage II about
  7 % of the TCR stage's time on CIFAR-100), the learning rates.

Evaluation clusters the 10,000 test images at once (one 10k × 10k Sinkhorn; the paper clusters the training split).
Published (Table 3, ACC / NMI): CIFAR-10 MLC-TCR 0.863 / 0.783; CIFAR-20 0.522 / 0.546; CIFAR-100 (Table 4)
0.494 / 0.683.
"""

import ml_collections

from experiments.mlc.configs import cpu


def get_config() -> ml_collections.ConfigDict:
    c = cpu.get_config()
    c.description = ("MLC on CIFAR-10/20/100 (python pickles from data_dir): CIFAR ResNet-18, d=128, TCR "
                     "pre-training then MLC, vs k-means / spectral on the TCR features")
    c.expected_runtime = "~10 h on one A100-class GPU (estimate: 24k TCR + 1.4k MLC steps of ResNet-18 at 2x1024)"
    c.expected_device = "1-8 GPUs or a TPU slice (data parallel; the loss is over the global batch)"
    c.expected_memory = "~20 GB accelerator memory at batch 1024 x 2 views (float32); host ~8 GB"
    c.dataset = "cifar10"
    c.data_dir = ""
    c.seeds = (0,)
    c.n_train = 0  # all 50,000 training images (labels never read)
    c.n_eval = 0  # all 10,000 test images
    c.num_clusters = 0  # as many as the dataset has classes (10 / 20 / 100)
    c.backbone = "resnet18"
    c.stage_sizes = (2, 2, 2, 2)
    c.width = 64
    c.hidden = 4096
    c.z_dim = 128
    c.crop_min = 0.08
    c.colour_jitter = 1.0
    steps_per_epoch = 50000 // 1024
    c.tcr_steps = 500 * steps_per_epoch
    c.tcr_learning_rate = 0.1
    c.tcr_warmup_steps = 10 * steps_per_epoch
    c.mlc_steps = 30 * steps_per_epoch
    c.learning_rate = 1e-3
    c.lr_cluster = 1e-3
    c.batch_size = 1024
    c.eval_batch_size = 1024
    c.log_every = 50
    c.checkpoint_every = 1000
    c.show_progress = True
    return c
