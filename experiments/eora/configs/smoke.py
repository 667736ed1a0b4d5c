"""smoke preset: a tiny random LLaMA on random tokens, GPTQ 3-bit and SparseGPT 2:4, ranks 4 and 8.

Command: python -m experiments run eora --preset smoke   (expected runtime: ~20 s on 2 CPU cores)
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description="EoRA smoke: tiny random LLaMA (2 layers, d=32), random tokens",
        expected_runtime="~20 s on 2 CPU cores", model="tiny",
        tiny=ml_collections.ConfigDict(dict(vocab_size=64, dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                            hidden_dim=64)),
        seed=0, seq_len=16, compress_passages=8, eora_passages=8, eval_passages=4, chars_per_book=0, batch_size=8,
        compressions=("gptq3", "sparsegpt24"), methods=("svd", "eora"), ranks=(4, 8), float64_eigh=True,
        eora_form="projection", eora_clamp="nvlabs_minpos", shared_calibration=False,
        ranks_per_compression=ml_collections.ConfigDict(dict(sparsegpt24=(8,))),
    ))
