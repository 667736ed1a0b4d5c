"""paper preset: the issue's full grid on SmolLM2-135M — {GPTQ 3-bit, SparseGPT 2:4, GPTQ 4-bit + SparseGPT 2:4} x
{none, SVD r, EoRA r} x r in {32, 64, 128}; 64 x 512-token calibration passages (the paper's eigen_nsamples = 64;
shorter sequences than its 2048), 32 x 512-token held-out passages.

Command: python -m experiments run eora --preset paper   (expected runtime: ~1-2 h on 2 CPU cores, minutes on a GPU)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("SmolLM2-135M, Austen 64x512 calib / 32x512 eval; {GPTQ3, SparseGPT 2:4, GPTQ4+2:4} x "
                     "{none, SVD, EoRA} x r in {32, 64, 128}")
    c.expected_runtime = "~1-2 h on 2 CPU cores"
    c.model = "smollm2"
    c.seed = 0
    c.seq_len = 512
    c.calib_passages = 64
    c.eval_passages = 32
    c.chars_per_book = 700_000
    c.batch_size = 4
    c.compressions = ("gptq3", "sparsegpt24", "gptq4_sparsegpt24")
    c.methods = ("svd", "eora")
    c.ranks = (32, 64, 128)
    c.float64_eigh = True
    return c
