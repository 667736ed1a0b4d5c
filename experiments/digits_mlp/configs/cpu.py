"""cpu preset: the full digits task on 2 CPU cores.

Command: python -m experiments run digits_mlp --preset cpu   (expected runtime: ~20 s on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "MLP (BatchNorm, dropout) on sklearn digits, 8x8 images, 1437 train / 360 test"
    c.expected_runtime = "~20 s on 2 CPU cores"
    c.seed = 0
    c.hidden = 128
    c.dropout = 0.1
    c.batch_size = 64
    c.num_steps = 1500
    c.learning_rate = 3e-3
    c.weight_decay = 1e-4
    c.test_fraction = 0.2
    c.log_every = 100
    c.eval_every = 500
    c.checkpoint_every = 500
    return c
