"""smoke preset: a few steps of each head on a tiny subset (expected runtime: < 30 s)."""

from experiments.gcr.configs import cpu


def get_config():
    c = cpu.get_config()
    c.description = "GCR smoke: 2 heads, 1 seed, a few steps"
    c.expected_runtime = "~20 s on 2 CPU cores"
    c.seeds = (0,)
    c.head_dims = (4,)
    c.transfer_head_dims = (4,)
    c.n_train = 256
    c.n_test = 256
    c.n_probe_train = 256
    c.channels = (4, 8)
    c.features = 16
    c.batch_size = 64
    c.epochs = 1
    c.log_every = 2
    return c
