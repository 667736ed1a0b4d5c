"""paper preset: there is no paper for this plumbing experiment; a longer, wider run for accelerators.

Command: python -m experiments run digits_mlp --preset paper   (expected runtime: ~1 min on one GPU)
"""

from experiments.digits_mlp.configs import cpu


def get_config():
    c = cpu.get_config()
    c.update(dict(expected_runtime="~1 min on one GPU", hidden=512, batch_size=256, num_steps=5000,
                  input_pipeline="grain", grain_workers=0))  # train.grain_batches (position checkpointed)
    return c
