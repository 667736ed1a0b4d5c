"""EigenShield paper preset (LLaVA-1.5 under visual jailbreak PGD) on a tiny replica of its inputs: a random LLaVA
written as a Hugging Face llava-hf directory with a word-level tokenizer.json, a folder of PNG images, a target
corpus (.csv) and a prompts file; the runner runs ``--preset paper`` end to end with sizes overridden, on the 8 fake
devices (data parallel)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eigenkit.data import write_hf_llava
from eigenkit.nn import ClipVisionConfig, LlamaConfig, Llava, LlavaConfig, RopeLayout, llava_weights
from experiments import __main__ as runner

WORDS = ["<s>", "<unk>", "USER:", "<image>", "ASSISTANT:", "describe", "the", "picture", "what", "is", "here",
         "sure", "I", "will", "help", "you", "now", "ok", "yes", "no"]
IMAGE_TOKEN = WORDS.index("<image>")


def _tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tok.save(str(path))


def _replica(tmp_path, n_images=12):
    from PIL import Image

    v = ClipVisionConfig(image_size=28, patch_size=14, hidden=16, num_layers=2, num_heads=2, intermediate=32)
    t = LlamaConfig(vocab_size=len(WORDS), dim=16, num_layers=1, num_heads=2, num_kv_heads=1, hidden_dim=32,
                    tie_embeddings=False, rope_layout=RopeLayout.HALF)
    cfg = LlavaConfig(vision=v, text=t, image_token_index=IMAGE_TOKEN)
    ck = tmp_path / "llava"
    write_hf_llava(ck, cfg, llava_weights(Llava(cfg, rngs=nnx.Rngs(0))))
    _tokenizer(ck / "tokenizer.json")
    rng = np.random.default_rng(0)
    (tmp_path / "img" / "a").mkdir(parents=True)
    for i in range(n_images):  # non-square, so the resize + centre crop runs
        Image.fromarray(rng.integers(0, 255, (40, 32, 3), dtype=np.uint8)).save(tmp_path / "img" / "a" / f"{i}.png")
    (tmp_path / "targets.csv").write_text("goal\nsure I will help you now\nok yes\n")
    (tmp_path / "prompts.txt").write_text("describe the picture\nwhat is here\n")
    return ck


@pytest.mark.slow
def test_paper_preset_runs_end_to_end_on_a_tiny_llava(tmp_path):
    ck = _replica(tmp_path)
    args = ["run", "eigenshield", "--preset", "paper", "--workdir", str(tmp_path / "w"), "--results",
            str(tmp_path / "r"), f"--config.checkpoint={ck}", f"--config.image_dir={tmp_path / 'img'}",
            f"--config.targets={tmp_path / 'targets.csv'}", f"--config.prompts={tmp_path / 'prompts.txt'}",
            "--config.param_dtype=float32", "--config.n_cal=4", "--config.n_test=8", "--config.batch_size=8",
            "--config.max_rank=8", "--config.n_bootstrap=2", "--config.eps=(32,)", "--config.pgd_steps=2",
            "--config.n_gen=3", "--config.max_fit_rows=12"]
    assert runner.main(args) == 0
    row = json.loads((tmp_path / "r" / "paper" / "summary.json").read_text())["rows"][0]
    assert row["status"] == "ok", row
    m = {x["name"]: x for x in row["metrics"]}
    assert {"eigenshield_clean_agreement", "pca_asr_adaptive_eps32", "none_asr_nonadaptive_eps32"} <= set(m)
    run = json.loads((tmp_path / "w" / "eigenshield" / "paper" / "table.json").read_text())["runs"][0]
    assert run["none_clean_agreement"] == 1.0  # the undefended model agrees with its own greedy answer
    assert run["fit_rows"] == 12
    for k, v in run.items():
        if "_asr_" in k or "agreement" in k:
            assert 0.0 <= v <= 1.0, (k, v)
    assert (tmp_path / "w" / "eigenshield" / "paper" / "spectrum.png").exists()


def test_text_layout_and_the_attack_lower_the_target_nll(tmp_path):
    from eigenkit.data import HFLlavaCheckpoint
    from eigenkit.nn import llava_from_weights
    from experiments.eigenshield import vlm

    ck = HFLlavaCheckpoint(_replica(tmp_path, n_images=2))
    tok = ck.tokenizer()
    pre, mid, tgt = vlm.encode(tok, IMAGE_TOKEN, "describe the picture", "sure I will")
    assert pre == [0, WORDS.index("USER:")]
    assert mid == [WORDS.index(w) for w in ("describe", "the", "picture", "ASSISTANT:")]
    assert tgt == [WORDS.index(w) for w in ("sure", "I", "will")]
    prefix, suffix, tmask, plen = vlm.make_batch_text(tok, IMAGE_TOKEN, ["describe the picture", "what is here"],
                                                      ["sure I will", "ok"], 2, 16, 2)
    assert suffix[1].tolist()[:5] == [WORDS.index(w) for w in ("what", "is", "here", "ASSISTANT:", "ok")]
    assert tmask[1].tolist()[:6] == [False] * 4 + [True, False] and plen.tolist() == [4, 4]
    model = llava_from_weights(ck.config, ck.weights())
    _, target_stats, _, _, pgd = vlm.make_fns(model, prefix)
    state = nnx.state(model)
    x = jnp.asarray(vlm.load_images(str(tmp_path / "img"), 28, 2), jnp.float32) / 255.0
    nll0, _ = target_stats(state, None, x, jnp.asarray(suffix), jnp.asarray(tmask))
    adv = pgd(state, None, x, jnp.asarray(suffix), jnp.asarray(tmask), 32 / 255, jax.random.key(0), steps=10)
    nll1, _ = target_stats(state, None, adv, jnp.asarray(suffix), jnp.asarray(tmask))
    assert float(jnp.max(jnp.abs(adv - x))) <= 32 / 255 + 1e-6
    assert float(jnp.sum(nll1)) < float(jnp.sum(nll0))
    with pytest.raises(ValueError, match="exactly once"):
        vlm.encode(tok, WORDS.index("what"), "describe", "ok")
    with pytest.raises(Exception, match="config.targets"):
        vlm.read_lines(str(tmp_path / "none.txt"), "targets")
