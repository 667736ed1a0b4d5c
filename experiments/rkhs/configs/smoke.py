"""smoke preset: the sweep on the 8-bit cube, one n, three mask rates (seconds).

Command: python -m experiments run rkhs --preset smoke
"""

from experiments.rkhs.configs import cpu


def get_config():
    c = cpu.get_config()
    c.update(dict(description="RKHS regression vs mask rate, 8-bit cube, smoke", expected_runtime="~5 s",
                  length=8, ns=(32,), alphas=(0.1, 0.5, 0.9), seeds=(0,), n_val=32, plot=False))
    return c
