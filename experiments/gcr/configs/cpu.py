"""cpu preset: small CNN on a Fashion-MNIST subset; softmax vs GCR heads, 3 seeds, plus a 5→5-class transfer probe.

Command: python -m experiments run gcr --preset cpu   (expected runtime: ~6 min on 2 CPU cores)

The issue's full sweep k ∈ {1, 4, 8, 16} with 3 seeds (21 trainings of a tiny CNN, ~6 min of CPU time measured);
transfer runs use the softmax head and GCR k = 8 only. To cut time: ``--config.head_dims='(8,)'``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("Fashion-MNIST, small CNN: softmax vs GCR k in {1,4,8,16} (3 seeds); transfer: train on classes "
                     "0-4, linear probe on 5-9; intra-class variability")
    c.expected_runtime = "~6 min on 2 CPU cores (350 s measured)"
    c.dataset = "fashion_mnist"
    c.seeds = (0, 1, 2)
    c.head_dims = (1, 4, 8, 16)  # GCR subspace dims k; the softmax baseline always runs
    c.transfer_head_dims = (8,)
    c.n_train = 8000  # per task; a seeded subset of the 60k training images
    c.n_test = 10000
    c.n_probe_train = 3000  # probe task (classes 5-9): training subset for the logistic-regression probe
    # backbone
    c.channels = (16, 32)
    c.features = 64
    c.batch_norm = True
    c.final_relu = True
    # optimisation: same budget and schedule for every head
    c.batch_size = 128
    c.eval_batch_size = 512
    c.epochs = 8
    c.learning_rate = 0.05  # backbone and vector head: SGD momentum 0.9, cosine decay
    c.weight_decay = 5e-4  # not applied to the Grassmann bases (as in GCR)
    c.momentum = 0.9
    c.gcr_lr_factor = 1.0  # geometric lr = learning_rate x lr_factor (GCR's lr_factor)
    c.gcr_gamma = 25.0
    c.gcr_reorth_every = 5
    c.gcr_momentum_rule = "EUCLIDEAN_BUFFER"  # name of eigenkit.manifolds.MomentumRule
    c.log_every = 100
    c.checkpoint_every = 0
    c.show_progress = True
    return c
