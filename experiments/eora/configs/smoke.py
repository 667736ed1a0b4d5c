"""smoke preset: a tiny random LLaMA on random tokens, GPTQ 3-bit and SparseGPT 2:4, ranks 4 and 8.

Command: python -m experiments run eora --preset smoke   (expected runtime: ~20 s on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "EoRA smoke: tiny random LLaMA (2 layers, d=32), random tokens"
    c.expected_runtime = "~20 s on 2 CPU cores"
    c.model = "tiny"
    c.tiny = ml_collections.ConfigDict(dict(vocab_size=64, dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                            hidden_dim=64))
    c.seed = 0
    c.seq_len = 16
    c.calib_passages = 8
    c.eval_passages = 4
    c.chars_per_book = 0
    c.batch_size = 8
    c.compressions = ("gptq3", "sparsegpt24")
    c.methods = ("svd", "eora")
    c.ranks = (4, 8)
    c.float64_eigh = True
    return c
