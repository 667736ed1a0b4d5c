"""cpu preset: S4D-Lin on sequential Fashion-MNIST (784 pixel steps), a data subset and a small model.

Command: python -m experiments run s4d --preset cpu   (expected runtime: ~10 min on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description="S4D-Lin (ZOH), 4 x H=32, N=64, on sequential Fashion-MNIST (L=784), 12k-image subset",
        expected_runtime="~10 min on 2 CPU cores (587 s measured)",
        seed=0, n_train=12000, n_test=2000,
        # model (official example.py defaults except width/depth); enums by name: Norm, ssm.Init, ssm.Discretization
        d_model=32, d_state=64, n_layers=4, dropout=0.0, prenorm=False, norm="layer", init="lin",
        discretization="zoh", dt_min=1e-3, dt_max=1e-1,
        # optimiser (example.py: AdamW lr 0.01, wd 0.01, cosine; SSM params lr min(1e-3, lr), wd 0)
        learning_rate=1e-2, ssm_lr=1e-3, weight_decay=1e-2, c_with_ssm_lr=False, warmup_steps=50,
        batch_size=64, eval_batch_size=256, num_steps=1200,
        log_every=50, eval_every=0, checkpoint_every=400, show_progress=True,
        baseline=True, baseline_max_iter=200,
    ))
