"""cpu preset: small CNN on a Fashion-MNIST subset; softmax vs GCR heads, 3 seeds, plus a 5→5-class transfer probe.

Command: python -m experiments run gcr --preset cpu   (expected runtime: ~10 min on 2 CPU cores)

The full sweep k ∈ {1, 4, 8, 16} with 3 seeds, for accuracy and for transfer (30 trainings of a tiny CNN). To cut
time: ``--config.head_dims='(8,)' --config.transfer_head_dims='(8,)'``.

Backbone and schedule follow the shape of the official recipes at toy scale (issue 12): BatchNorm before the
backbone's last ReLU (as a ResNet's last block) and one epoch of linear warm-up before the cosine decay, one schedule
for the Euclidean and the Riemannian groups. Without them the normalised GCR head (backbone gradient ∝ γ/‖f‖, with
‖f‖ ≈ 3.7 at initialisation) blows up in the first steps and kills a third of the feature units; see
experiments/gcr/README.md ("Pitfall"). γ = 25, lr factor 1, the official momentum rule and re-orthonormalisation
every 5 steps are unchanged.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("Fashion-MNIST, small CNN (BN before the last ReLU, 1-epoch warm-up): softmax vs GCR k in "
                     "{1,4,8,16} (3 seeds); transfer for every k: train on classes 0-4, linear probe on 5-9; "
                     "intra-class variability; training-health diagnostics")
    c.expected_runtime = "~10 min on 2 CPU cores (637 s measured, machine shared)"
    c.dataset = "fashion_mnist"
    c.seeds = (0, 1, 2)
    c.head_dims = (1, 4, 8, 16)  # GCR subspace dims k; the softmax baseline always runs
    c.transfer_head_dims = (1, 4, 8, 16)
    c.n_train = 8000  # per task; a seeded subset of the 60k training images
    c.n_test = 10000
    c.n_probe_train = 3000  # probe task (classes 5-9): training subset for the logistic-regression probe
    # backbone
    c.channels = (16, 32)
    c.features = 64
    c.batch_norm = True
    c.final_relu = True
    c.final_batch_norm = True  # BatchNorm between the last Linear and the final ReLU (every head, softmax too)
    # optimisation: same budget and schedule for every head
    c.batch_size = 128
    c.eval_batch_size = 512
    c.epochs = 8
    c.learning_rate = 0.05  # backbone and vector head: SGD momentum 0.9, cosine decay
    c.weight_decay = 5e-4  # not applied to the Grassmann bases (as in GCR)
    c.momentum = 0.9
    c.warmup_epochs = 1.0  # linear warm-up, then cosine to 0; the same schedule object for both parameter groups
    c.gcr_lr_factor = 1.0  # geometric lr = learning_rate x lr_factor (GCR's lr_factor)
    c.gcr_gamma = 25.0
    c.gcr_reorth_every = 5
    c.gcr_momentum_rule = "EUCLIDEAN_BUFFER"  # name of eigenkit.manifolds.MomentumRule
    c.log_every = 1  # every step: the diagnostics report the largest loss of steps 1-50
    c.checkpoint_every = 0
    c.show_progress = True
    return c
