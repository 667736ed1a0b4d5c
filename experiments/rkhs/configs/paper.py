"""paper preset: the same sweep on the 14-bit cube (16,384 points, up to 4,096 labels).

**Not the paper's setting.** The paper's real-data experiment pre-trains RoBERTa-large with masked language
modelling on wikipedia-simple (8 GPUs) and probes QNLI / SST-2; this preset scales the closed-form masking cube of
the cpu preset, whose spectrum is known exactly. Command: python -m experiments run rkhs --preset paper
"""

from experiments.rkhs.configs import cpu


def get_config():
    c = cpu.get_config()
    c.update(dict(description="RKHS regression vs mask rate on the 14-bit cube (proxy: not the paper's MLM setting)",
                  expected_runtime="~10 min on 2 CPU cores; ~1 min on one GPU",
                  expected_device="any (CPU suffices; one GPU for speed)",
                  expected_memory="~4 GB (kernel blocks 16,384 x 4,096 in float64)",
                  length=14, ns=(64, 256, 1024, 4096), n_val=1024))
    return c
