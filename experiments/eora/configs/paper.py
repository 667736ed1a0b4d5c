"""paper preset: the official calibration protocol on SmolLM2-135M — two disjoint calibration sets drawn with
``(seed, draw)``, 128 x 2048-token passages for the compressor (the official ``--nsamples 128``) and 256 x 2048 for
EoRA (``--eigen_nsamples 256``), 32 x 2048 held-out passages; {GPTQ 3-bit, SparseGPT 2:4, GPTQ 4-bit + SparseGPT 2:4}
x {none, SVD r, EoRA r} x r in {32, 64, 128}. The paper calibrates on C4 / WikiText-2 and reports WikiText-2
perplexity; here all three sets come from the Austen novels (the only offline text corpus, ../shared/DATA.md), so the
numbers are not the paper's, only its protocol.

Command: python -m experiments run eora --preset paper   (expected runtime: ~1 h on one GPU; many hours on 2 CPU
cores; the full novels give ~1.1M tokens, of which this uses ~850k)
"""

from experiments.eora.configs import cpu


def get_config():
    """The cpu preset at the official code's calibration sizes."""
    c = cpu.get_config()
    c.update(dict(description="SmolLM2-135M, Austen 128x2048 compression calib / 256x2048 EoRA calib / 32x2048 "
                              "held-out (disjoint); {GPTQ3, SparseGPT 2:4, GPTQ4+2:4} x {none, SVD, EoRA} x "
                              "r in {32, 64, 128}",
                  expected_runtime="~1 h on one GPU"))
    c.update(dict(seq_len=2048, compress_passages=128, eora_passages=256, eval_passages=32, chars_per_book=10_000_000,
                  batch_size=4, float64_eigh=True, ranks=(32, 64, 128)))
    return c
