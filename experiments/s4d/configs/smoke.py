"""smoke preset: a few steps on a tiny subset (used by the tests; expected runtime: < 30 s)."""

from experiments.s4d.configs import cpu


def get_config():
    c = cpu.get_config()
    c.update(dict(description="S4D smoke run: 2 x H=8, N=8, 64 sequences of sequential Fashion-MNIST",
                  expected_runtime="< 30 s", n_train=64, n_test=32, d_model=8, d_state=8, n_layers=2))
    c.update(dict(batch_size=16, eval_batch_size=32, num_steps=4, warmup_steps=0, log_every=2, checkpoint_every=2,
                  baseline=False))
    return c
