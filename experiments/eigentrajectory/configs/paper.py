"""paper preset: the official protocol on the user's ETH/UCY copy — five leave-one-scene-out splits, k = 6,
20 anchors (k-means n_init 10), AdamW lr 1e-3 / wd 1e-4, clip 10, learning rate halved every quarter of the run
(official StepLR every 64 of 256 epochs), model selection by val FDE; 3 seeds; data parallel over all devices
(scenes of a batch split over the mesh).

Budget: the official runs 256 epochs, one optimiser step per 128 scenes (≈ 22 steps per epoch on eth's 2785 training
windows, ≈ 5.6k steps). Here one step sees ``agent_slots`` = 2048 agent slots of padded scenes: 26 / 25 / 10 / 23 /
22 steps per epoch on eth / hotel / univ / zara1 / zara2, so ``num_steps`` = 6400 is 246 / 256 / 640 / 278 / 291
epochs (measured with ``Buckets(...).batches_per_epoch``).

Command: python -m experiments run eigentrajectory --preset paper --config.data_dir=/path/to/ethucy
"""

from experiments.eigentrajectory.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="EigenTrajectory at the paper's protocol: 5 ETH/UCY splits, ET vs Euclidean twin, "
                              "3 seeds (needs config.data_dir or $EIGENKIT_ETHUCY)",
                  expected_runtime="not measured (no GPU here); estimated 1-2 h on one GPU", dataset="ethucy",
                  seeds=(0, 1, 2), kmeans_n_init=10,
                  hidden=128, heads=8, layers=4, num_steps=6400, agent_slots=2048, eval_every=200,
                  checkpoint_every=800))
    c.expected_device = "GPU or TPU (runs on CPU too, slowly)"
    c.expected_memory = "~2 GB"
    return c
