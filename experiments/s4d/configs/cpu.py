"""cpu preset: S4D-Lin on sequential Fashion-MNIST (784 pixel steps), a data subset and a small model.

Command: python -m experiments run s4d --preset cpu   (expected runtime: ~8 min on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "S4D-Lin (ZOH), 4 x H=32, N=64, on sequential Fashion-MNIST (L=784), 12k-image subset"
    c.expected_runtime = "~8 min on 2 CPU cores"
    c.seed = 0
    c.n_train = 12000
    c.n_test = 2000
    # model (official example.py defaults except width/depth)
    c.d_model = 32
    c.d_state = 64
    c.n_layers = 4
    c.dropout = 0.0
    c.prenorm = False
    c.norm = "layer"  # Norm enum name
    c.init = "lin"  # eigenkit.ssm.Init name: lin, inv, legs, real
    c.discretization = "zoh"  # eigenkit.ssm.Discretization name
    c.dt_min = 1e-3
    c.dt_max = 1e-1
    # optimiser (example.py: AdamW lr 0.01, wd 0.01, cosine; SSM params lr min(1e-3, lr), wd 0)
    c.lr = 1e-2
    c.ssm_lr = 1e-3
    c.weight_decay = 1e-2
    c.c_with_ssm_lr = False
    c.warmup_steps = 50
    c.batch_size = 64
    c.eval_batch_size = 256
    c.num_steps = 1200
    c.log_every = 50
    c.eval_every = 0
    c.checkpoint_every = 400
    c.baseline = True
    c.baseline_max_iter = 200
    return c
