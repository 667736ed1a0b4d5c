"""smoke preset: the synthetic crowd, a tiny backbone, a few steps of each space (seconds).
Command: python -m experiments run eigentrajectory --preset smoke"""

from experiments.eigentrajectory.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="EigenTrajectory smoke test: synthetic crowd, 4 steps per space",
                  expected_runtime="~30 s on 2 CPU cores", dataset="synthetic", synthetic_recordings=1,
                  synthetic_agents=8, synthetic_frames=40, kmeans_n_init=1, hidden=16, heads=2, layers=1,
                  num_steps=4, eval_every=2, log_every=2, buckets=(8,), agent_slots=64))
    return c
