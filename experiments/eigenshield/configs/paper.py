"""paper preset: the paper's setting — a vision-language model (LLaVA-1.5) under visual jailbreak attacks, with the
EigenShield-style (reconstructed) filter on the image tokens entering the language model (``experiments/eigenshield/
vlm.py``). Runs end to end from the user's files; nothing downloads::

    python -m experiments run eigenshield --preset paper \\
        --config.checkpoint=/path/to/llava-1.5-7b-hf \\
        --config.image_dir=/path/to/images --config.targets=/path/to/harmful_corpus.csv [--config.prompts=FILE]

``checkpoint``: a Hugging Face LLaVA-1.5 directory (``llava-hf/llava-1.5-7b-hf`` or ``-13b-hf``: ``config.json``,
``tokenizer.json``, safetensors); ``image_dir``: any folder of images (at least ``n_cal + n_test``; e.g. COCO val2017
for calibration and attack seeds); ``targets``: one target response per line (``.txt``) or the first column of a
``.csv`` (Qi et al.'s ``derogatory_corpus.csv``). Sizes: 7B in bfloat16 holds 14 GB of weights; PGD through it at
batch 4 fits one 80 GB GPU (an estimate, not measured here: this project's machines have no GPU). Data parallel over
every device of the mesh (``batch_size`` must divide by their number).

Deviations from Qi et al.'s attack (documented in the README): one image per target, ``pgd_steps`` = 100 instead of a
5,000-step universal image, success = exact target match instead of a toxicity judge (no download).

The image-encoder proxy at full Fashion-MNIST scale (this preset before the VLM path existed) is the cpu preset with
``--config.n_train=50000 --config.n_cal=10000 --config.n_test=10000 --config.channels='(32, 64)'
--config.features=128 --config.epochs=20 --config.pgd_steps=40 --config.eps='(2, 4, 8, 16)'``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("EigenShield-style (reconstructed) filter on LLaVA-1.5's image tokens vs same-rank PCA / random / "
                     "none under targeted visual-jailbreak PGD (non-adaptive and adaptive)")
    c.expected_runtime = "~1 h on one 80 GB GPU for llava-1.5-7b (estimate)"
    c.task = "vlm"
    c.checkpoint = ""         # Hugging Face LLaVA-1.5 directory
    c.image_dir = ""          # folder of images (calibration + attacked)
    c.targets = ""            # target responses: .txt lines or .csv first column
    c.prompts = ""            # optional prompts file; "" = vlm.DEFAULT_PROMPTS
    c.param_dtype = "bfloat16"
    c.n_cal, c.n_test = 128, 32
    c.batch_size = 4
    c.seeds = (0,)
    c.max_fit_rows = 65536    # calibration rows (image tokens) given to the fit, a seeded subset
    c.max_rank = 256
    c.alpha = 0.1
    c.n_bootstrap = 20
    c.eps = (8, 16, 32)       # L∞ in 1/255
    c.pgd_steps = 100
    c.max_target = 16         # target tokens kept per response
    c.n_gen = 16              # tokens of the clean greedy answer for the agreement metric
    return c
