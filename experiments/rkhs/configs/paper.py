"""paper preset: the paper's real-data setting — masked language modelling on wikipedia-simple at several mask
rates, then a linear probe of the average encoder on GLUE SST-2 and QNLI, with the empirical augmentation complexity
beside each mask rate (the code path of study ``rkhs.text``, ``source="glue"``).

Command (the data the paper's users already have; nothing is downloaded)::

    python -m experiments run rkhs --preset paper \\
        --config.corpus=/data/simplewiki.txt \\      # wikipedia-simple as text, one article or paragraph per line
        --config.glue_dir=/data/glue                 # GLUE's SST-2/{train,dev}.tsv and QNLI/{train,dev}.tsv

Setting: a RoBERTa-large-sized encoder (24 layers, width 1024, 16 heads, FFN 4096; the paper pre-trains RoBERTa-large
with HuggingFace on 8 A6000s) trained from scratch with MLM per mask rate, sequences of 128 tokens, bfloat16 compute,
data parallel over every device (``eigenkit.train``), checkpoints every 1,000 steps with resume. The mask-rate grid,
the step count and the optimiser constants are **recalled**, not checked against the paper (``shared/methods/rkhs.md``:
the notes quote no numbers). Deviations: a closed word-level vocabulary of the 30,000 most frequent corpus tokens
instead of RoBERTa's BPE (no tokenizer download; the masking kernel is over these tokens), pure ``[MASK]``
replacement (the augmentation ``p(a|x)`` of the theory) instead of BERT's 80/10/10, and a ridge probe of the frozen
average encoder (the paper's downstream estimator is a norm-constrained linear fit) instead of fine-tuning.
"""

from experiments.rkhs import text


def get_config():
    c = text.get_config("cpu")
    c.update(dict(
        task="text",
        description="MLM on wikipedia-simple per mask rate (RoBERTa-large size, word vocab), ridge probe of the "
                    "average encoder on SST-2 / QNLI dev, empirical kappa^2 beside it",
        expected_runtime="~10 h per mask rate on 8 GPUs (100k steps of 256 x 128 tokens)",
        expected_device="GPU or TPU, data parallel over every device (8 x 40 GB class)",
        expected_memory="~6 GB of parameters + Adam state (355M parameters), activations per device batch",
        source="glue", corpus="", glue_dir="", tasks=("sst2", "qnli"),
        length=128, vocab_size=30_000, n_train_per_class=0, max_pretrain=0,
        alphas=(0.05, 0.15, 0.3, 0.5, 0.7), seeds=(0,),
        encoder="bert", objective="mlm", embed_dim=1024,
        hidden=1024, num_layers=24, num_heads=16, intermediate=4096,
        batch_size=256, num_steps=100_000, learning_rate=1e-4, warmup_steps=10_000, weight_decay=0.01,
        compute_dtype="bfloat16", n_avg=8, embed_batch=256, n_ref=20_000, kappa_points=512, kappa_masks=8,
        log_every=500, checkpoint_every=1000,
    ))
    return c
