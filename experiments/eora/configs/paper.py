"""paper preset: the issue's full grid on SmolLM2-135M — {GPTQ 3-bit, SparseGPT 2:4, GPTQ 4-bit + SparseGPT 2:4} x
{none, SVD r, EoRA r} x r in {32, 64, 128}; 64 x 512-token calibration passages (the paper's eigen_nsamples = 64;
shorter sequences than its 2048), 32 x 512-token held-out passages.

Command: python -m experiments run eora --preset paper   (expected runtime: ~1-2 h on 2 CPU cores, minutes on a GPU)
"""

from experiments.eora.configs import cpu


def get_config():
    """The cpu preset at paper scale: longer and more calibration / evaluation passages, same grid."""
    c = cpu.get_config()
    c.update(dict(description="SmolLM2-135M, Austen 64x512 calib / 32x512 eval; {GPTQ3, SparseGPT 2:4, GPTQ4+2:4} x "
                              "{none, SVD, EoRA} x r in {32, 64, 128}", expected_runtime="~1-2 h on 2 CPU cores"))
    c.update(dict(seq_len=512, calib_passages=64, eval_passages=32, chars_per_book=700_000, batch_size=4))
    return c
