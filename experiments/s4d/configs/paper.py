"""paper preset: the S4D paper's sequential-image recipe (official example.py / sCIFAR LRA-Image config scaled to
sequential Fashion-MNIST): 6 x H=512, N=64, batch norm, post-norm, dropout 0.1, AdamW lr 0.01 wd 0.05, SSM params
(A, dt, B and C: scalar-lr config) lr 0.001, cosine with 10% warm-up, 200 epochs of 60k images.

Command: python -m experiments run s4d --preset paper   (expected runtime: ~10 h on one A100-class GPU; not run here)
"""

from experiments.s4d.configs import cpu


def get_config():
    c = cpu.get_config()
    c.description = "S4D-Lin 6 x H=512, N=64, sequential Fashion-MNIST, full data, 200 epochs (paper's image recipe)"
    c.expected_runtime = "~10 h on one A100-class GPU (not run here)"
    c.n_train = 60000
    c.n_test = 10000
    c.d_model = 512
    c.d_state = 64
    c.n_layers = 6
    c.dropout = 0.1
    c.norm = "batch"
    c.prenorm = False
    c.lr = 1e-2
    c.ssm_lr = 1e-3
    c.weight_decay = 5e-2
    c.c_with_ssm_lr = True
    c.batch_size = 50
    c.num_steps = 200 * 60000 // 50
    c.warmup_steps = c.num_steps // 10
    c.eval_every = 60000 // 50
    c.checkpoint_every = 60000 // 50
    c.baseline = True
    c.baseline_max_iter = 1000
    return c
