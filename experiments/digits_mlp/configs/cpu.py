"""cpu preset: the full digits task on 2 CPU cores.

Command: python -m experiments run digits_mlp --preset cpu   (expected runtime: ~15 s on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description="MLP (BatchNorm, dropout) on sklearn digits, 8x8 images, 1437 train / 360 test",
        expected_runtime="~15 s on 2 CPU cores (11 s measured)",
        seed=0, hidden=128, dropout=0.1, test_fraction=0.2,
        batch_size=64, num_steps=1500, learning_rate=3e-3, weight_decay=1e-4,
        log_every=100, eval_every=500, checkpoint_every=500, show_progress=True,
    ))
