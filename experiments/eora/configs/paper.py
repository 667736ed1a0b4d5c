"""paper preset: the paper's LLaMA-3-8B WikiText-2 table (EoRA, arXiv:2410.21271; NVlabs/EoRA ``eora.py``) —
{SparseGPT 2:4, Wanda 2:4, GPTQ 3-bit, GPTQ 4-bit + SparseGPT 2:4} x {none, SVD r, EoRA r} at r = 128, WikiText-2
test perplexity, on the user's Hugging Face checkpoint, one decoder block at a time.

Command (a local copy of ``meta-llama/Meta-Llama-3-8B`` with ``config.json``, ``tokenizer.json`` and the
``*.safetensors`` shards; WikiText-2 raw as ``wiki.{train,test}.raw`` from ``wikitext-2-raw-v1.zip``, or the
``wikitext-2-raw-v1/`` parquet folder of the Hugging Face dataset with pyarrow installed)::

    python -m experiments run eora --preset paper --config.model_path=/path/to/Meta-Llama-3-8B \\
        --config.data_dir=/path/to/wikitext-2-raw-v1

Protocol (official defaults, ``EoRA/README.md`` and ``datautils.get_wikitext2``): 2048-token windows; the compressor
calibrates on 128 windows of the tokenised ``"\\n\\n"``-joined WikiText-2 training text drawn with
``random.seed(0)`` (``--nsamples 128 --seed 0``), EoRA on 64 windows drawn with seed 0 + 1 (README
``--eigen_nsamples 64``; the argparse default is 256); perplexity on all non-overlapping 2048-token windows of the
tokenised test text (``llama_eval``). GPTQ: per-channel asymmetric min-max, act-order, no groups, percdamp 0.01,
block 128; SparseGPT / Wanda 2:4; GPTQ 4-bit + 2:4 is SparseGPT's joint prune-and-quantise sweep.

Deviations from the official run: everything in float32 (the official code loads the model in bf16 and casts
``W_c``, ``B``, ``A`` to bf16), float64 eigendecomposition as the official; every linear of a block is compressed
from one block-parallel covariance pass (``--true-sequential`` re-hooks after q/k/v, o and gate/up; not done here);
the EoRA covariance is the plain token mean (``eora.CovarianceWeighting``'s official decay differs only in the
per-sequence weights). The paper's table (``../shared/methods/eora.md``): uncompressed 6.13; SparseGPT 2:4 12.32 /
SVD 11.31 / EoRA 11.07; Wanda 2:4 21.4 / 17.2 / 14.0; GPTQ 3-bit 15.64 / 10.24 / 10.06; GPTQ 4-bit + 2:4
86.15 / 12.84 / 12.60.

Expected (estimates, not run here — no GPU was available to this port): ~3-6 h on one A100/H100-class GPU;
many days on CPU. Memory, by design of the block-streamed driver: on the device one block's weights in three copies
(``W``, ``W_c``, ``W_c + B A``: 3 x 0.87 GB), the covariances of its four inputs (1.0 GB, ``down_proj``'s
14336 x 14336 dominating) and their eigendecomposition / GPTQ workspace (a few GB), one chunk's activations
(``batch_size`` = 2 windows: attention scores 2 x 32 x 2048^2 x 4 B = 1.1 GB, a few times that in flight) and, for the
perplexity head, ``lm_head`` (2.1 GB) and the chunk's logits (2 x 2048 x 128256 x 4 B = 2.1 GB, twice with the
log-softmax): ~15 GB peak. On the host the hidden states of all windows between blocks (128 x 2048 x 4096 x 4 B =
4.3 GB for the compressor, 2.1 GB for EoRA, ~4.7 GB for the ~140 test windows) plus the memory-mapped bf16 checkpoint
(16 GB, paged by the OS). On disk (``workdir/stores``) one compression's float32 ``W_c`` (28 GB) and its factor stores
(1.3 GB per compensation at r = 128) at a time; removed after each compression (``--config.keep_stores=True`` keeps
them). On a TPU set ``--config.float64_eigh=False`` (no float64 there).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        description=("LLaMA-3-8B (HF checkpoint, block-streamed), WikiText-2 128x2048 compression calib (seed 0) / "
                     "64x2048 EoRA calib (seed 1) / all test windows; {SparseGPT 2:4, Wanda 2:4, GPTQ3, GPTQ4+2:4} x "
                     "{none, SVD, EoRA} x r = 128"),
        expected_runtime="~3-6 h on one A100/H100-class GPU (estimate, not run here)",
        expected_device="1 GPU with >= 40 GB (A100/H100-class; ~15 GB peak, so 24 GB may do with batch_size=1), or "
                        "a TPU v4/v5 host with float64_eigh=False",
        expected_memory=("device ~15 GB peak (one block x3 copies 2.6 GB + covariances 1 GB + decomposition and "
                         "activation workspace); host ~12 GB RAM for the hidden states (4.3 GB per 128x2048 set) "
                         "plus the 16 GB memory-mapped checkpoint; ~30 GB free disk in the workdir"),
        model="hf", model_path="",  # the Hugging Face checkpoint folder (Meta-Llama-3-8B)
        calibration="wikitext2", data_dir="",  # WikiText-2 raw: wiki.*.raw or the HF parquet folder
        seed=0, seq_len=2048, compress_passages=128, eora_passages=64,
        eval_passages=0,  # 0: every non-overlapping test window (llama_eval)
        batch_size=2, state_placement="host", stream=True, keep_stores=False,
        compressions=("sparsegpt24", "wanda24", "gptq3", "gptq4_sparsegpt24"),
        methods=("svd", "eora"), ranks=(128,), float64_eigh=True,
        eora_form="projection", eora_clamp="nvlabs_minpos", shared_calibration=False,
        ranks_per_compression=ml_collections.ConfigDict(),
    ))
