"""Out-of-distribution size shift: train / validate on MOSES molecules with <= 20 heavy atoms, test on the larger ones
(> 20), none / LapPE / SPE with the cpu-preset model and budget, one seed (an extra beyond the MAE table).

    python -m experiments run spe.ood --preset cpu      (a registered study; presets smoke, cpu)
"""

from __future__ import annotations

import ml_collections

from experiments.spe.configs import cpu, smoke
from experiments.spe.train import train_and_evaluate  # noqa: F401 - the study's entry point

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    if preset == "cpu":
        c = cpu.get_config()
        # 6000/1500/500 before the size filter (~1/3 of MOSES has <= 20 atoms)
        c.update(dict(n_train=6000, n_val=1500, n_test=500, seeds=(0,), eval_every=100))
        c.update(dict(description="SPE size shift: train/val on <= 20 atoms, test on > 20; none/LapPE/SPE, 1 seed",
                      expected_runtime="~4 min on 2 CPU cores"))
    elif preset == "smoke":
        c = smoke.get_config()
        c.update(dict(n_train=200, n_val=64, n_test=64, description="SPE size-shift smoke test",
                      expected_runtime="~30 s"))
    else:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    c.ood_max_train_nodes = 20
    return c
