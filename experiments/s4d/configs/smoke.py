"""smoke preset: a few steps on a tiny subset (used by the tests; expected runtime: < 30 s)."""

from experiments.s4d.configs import cpu


def get_config():
    c = cpu.get_config()
    c.description = "S4D smoke run: 2 x H=8, N=8, 64 sequences of sequential Fashion-MNIST"
    c.expected_runtime = "< 30 s"
    c.n_train = 64
    c.n_test = 32
    c.d_model = 8
    c.d_state = 8
    c.n_layers = 2
    c.batch_size = 16
    c.eval_batch_size = 32
    c.num_steps = 4
    c.warmup_steps = 0
    c.log_every = 2
    c.checkpoint_every = 2
    c.baseline = False
    return c
