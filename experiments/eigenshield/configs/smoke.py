"""smoke preset: one seed, a few training steps, one eps (seconds). Command:
python -m experiments run eigenshield --preset smoke"""

from experiments.eigenshield.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="EigenShield smoke: 1 seed, tiny subsets", expected_runtime="~30 s on 2 CPU cores",
                  n_train=256, n_cal=256, n_test=64, seeds=(0,), channels=(4, 8), features=16, epochs=1,
                  batch_size=64, eval_batch_size=64, eps=(8,), pgd_steps=2, n_bootstrap=4, log_every=2))
    return c
