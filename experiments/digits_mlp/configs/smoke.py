"""smoke preset: a few steps, used by the tests (expected runtime: a few seconds)."""

from experiments.digits_mlp.configs import cpu


def get_config():
    c = cpu.get_config()
    c.expected_runtime = "~5 s"
    c.hidden = 32
    c.batch_size = 16
    c.num_steps = 6
    c.log_every = 2
    c.eval_every = 3
    c.checkpoint_every = 3
    return c
