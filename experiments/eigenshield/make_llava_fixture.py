"""Write the LLaVA parity fixture: a tiny random ``transformers.LlavaForConditionalGeneration`` saved with
``save_pretrained`` (the tensor layout and ``config.json`` that ``transformers`` itself writes) and its logits on
fixed inputs, for ``tests/nn/test_llava.py`` (which checks ``eigenkit.nn.Llava`` + ``eigenkit.data.HFLlavaCheckpoint``
against them without torch).

EigenShield has no official code; this fixture pins the **model** the paper preset runs (LLaVA-1.5) to the reference
implementation of that model. Needs torch and transformers (not eigenkit dependencies)::

    pip install torch transformers
    python -m experiments.eigenshield.make_llava_fixture [--out tests/fixtures/llava_tiny]

Recorded in ``fixture.json``: the torch / transformers versions, the seed and the input layout.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/llava_tiny")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import torch
    import transformers
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(a.seed)
    vocab, image_token = 48, 47
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                       num_attention_heads=2, image_size=28, patch_size=14, projection_dim=8),
        text_config=LlamaConfig(hidden_size=16, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, vocab_size=vocab, rms_norm_eps=1e-5, rope_theta=10000.0,
                                max_position_embeddings=64, tie_word_embeddings=False),
        image_token_index=image_token, vision_feature_layer=-2, vision_feature_select_strategy="default",
        projector_hidden_act="gelu")
    model = LlavaForConditionalGeneration(cfg).eval().float()
    with torch.no_grad():  # random init is tiny in places; widen it so that the comparison is not trivially ~0
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    rng = np.random.default_rng(a.seed)
    images = rng.uniform(0, 1, (2, 28, 28, 3)).astype(np.float32)
    prefix = rng.integers(0, image_token, (2, 3))
    suffix = rng.integers(0, image_token, (2, 5))
    n_img = (28 // 14) ** 2
    ids = np.concatenate([prefix, np.full((2, n_img), image_token), suffix], axis=1)
    pix = (images - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids), pixel_values=torch.from_numpy(pix).permute(0, 3, 1, 2),
                       attention_mask=torch.ones(ids.shape, dtype=torch.long)).logits.numpy()
    np.savez(out / "io.npz", images=images, prefix=prefix.astype(np.int32), suffix=suffix.astype(np.int32),
             logits=logits.astype(np.float32))
    (out / "fixture.json").write_text(json.dumps({
        "made_by": "experiments/eigenshield/make_llava_fixture.py", "seed": a.seed, "torch": torch.__version__,
        "transformers": transformers.__version__,
        "inputs": "images in [0,1] (b,28,28,3); input_ids = prefix, 4 x <image>, suffix; pixel_values = CLIP-normalised"
                  " images (NCHW)"}, indent=2))
    print(f"wrote {out}: logits {logits.shape}, |logits| max {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main()
