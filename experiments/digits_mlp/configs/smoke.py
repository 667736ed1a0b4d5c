"""smoke preset: a few steps, used by the tests (expected runtime: a few seconds)."""

from experiments.digits_mlp.configs import cpu


def get_config():
    c = cpu.get_config()
    c.update(dict(expected_runtime="~5 s", hidden=32, batch_size=16, num_steps=6, log_every=2, eval_every=3,
                  checkpoint_every=3))
    return c
