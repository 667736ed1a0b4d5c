"""cpu preset: the five ETH/UCY leave-one-scene-out splits (from ``config.data_dir`` or ``$EIGENKIT_ETHUCY``; the
synthetic social-force crowd when neither is given, labelled so), the masked social transformer in ET space vs its
Euclidean twin, same budget, 1 seed.

Command: EIGENKIT_ETHUCY=/path/to/ethucy python -m experiments run eigentrajectory --preset cpu
(expected runtime: ~5 min on 2 CPU cores; 275 s measured on an idle machine)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("ETH/UCY best-of-20 ADE/FDE, 5 leave-one-scene-out splits: a masked social transformer in ET "
                     "space (k = 6, k-means anchors) vs the same backbone in Euclidean space; synthetic crowd "
                     "without a data path")
    c.expected_runtime = "~5 min on 2 CPU cores (275 s measured idle)"
    c.dataset = "auto"  # "auto" | "ethucy" | "synthetic"
    c.data_dir = ""  # the Social-GAN folder <root>/<scene>/<split>/*.txt (else $EIGENKIT_ETHUCY)
    c.scenes = ("eth", "hotel", "univ", "zara1", "zara2")
    c.spaces = ("et", "euclidean")
    c.seeds = (0,)
    c.obs_len = 8
    c.pred_len = 12
    c.static_dist = 0.0  # 0: the official per-scene value
    # synthetic crowd (used only without ETH/UCY)
    c.synthetic_recordings = 6
    c.synthetic_agents = 24
    c.synthetic_frames = 200
    c.data_seed = 0
    # ET space (official defaults)
    c.k = 6
    c.num_samples = 20
    c.kmeans_n_init = 3  # official 10; 3 gives the same objective to < 0.1 % here and saves ~1 min over 5 scenes
    # backbone
    c.hidden = 64
    c.heads = 4
    c.layers = 2
    c.mlp_ratio = 2
    # optimisation (official AdamW / clip / StepLR, shortened)
    c.num_steps = 800
    c.learning_rate = 1e-3
    c.weight_decay = 1e-4
    c.clip_grad = 10.0
    c.lr_step_every = 0  # 0: num_steps // 4 (official: every 64 of 256 epochs)
    c.lr_gamma = 0.5
    # batching: scenes padded into agent-count buckets, agent_slots agents per batch
    c.buckets = (8, 16, 32, 64)
    c.agent_slots = 1024
    c.eval_every = 200
    c.log_every = 100
    c.checkpoint_every = 0
    c.show_progress = True
    return c
