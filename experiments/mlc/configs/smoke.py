"""smoke preset: a few steps of each stage on a tiny subset (expected runtime: < 30 s)."""

from experiments.mlc.configs import cpu


def get_config():
    c = cpu.get_config()
    c.description = "MLC smoke: 1 seed, a few steps of TCR and MLC"
    c.expected_runtime = "~20 s on 2 CPU cores"
    c.seeds = (0,)
    c.n_train = 256
    c.n_eval = 200
    c.channels = (4, 8)
    c.features = 16
    c.hidden = 32
    c.z_dim = 8
    c.tcr_steps = 3
    c.mlc_steps = 3
    c.batch_size = 64
    c.eval_batch_size = 128
    c.log_every = 1
    return c
