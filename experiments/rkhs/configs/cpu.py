"""cpu preset: kernel ridge ("RKHS") regression with the i.i.d.-masking augmentation kernel on the 12-bit cube
(4,096 points), test error vs the mask rate alpha with kappa^2 = (2 - alpha)^12 beside it, n in {64, 256, 1024}
labels, 3 seeds; baselines: linear ridge on the raw bits and the oracle probe on the exact top-d eigenspace.

Command: python -m experiments run rkhs --preset cpu
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description="RKHS regression with the masking kernel vs mask rate alpha (12-bit cube, degree-<=3 target + a "
                    "degree-6 component), kappa^2 beside it; baselines linear ridge and the exact-eigenspace oracle",
        expected_runtime="~1 min on 2 CPU cores",
        length=12,
        # target: random coefficients on this many parities of each degree, a small high-degree part, label noise
        terms={"1": 3, "2": 3, "3": 2}, high_degree=6, high_weight=0.3, noise=0.1,
        ns=(64, 256, 1024), n_val=256,
        alphas=(0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999),
        lambdas=(1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),  # ridge grid, chosen on the validation labels
        fixed_lambda=1e-3,  # the same sweep at one fixed ridge (the one-factor check of where the sweet spot sits)
        oracle_degree=3, seeds=(0, 1, 2), plot=True,
    ))
