"""LLaVA-1.5 checkpoints in the Hugging Face layout (``llava-hf/llava-1.5-7b-hf``, ``-13b-hf``), read offline.

A checkpoint directory holds ``config.json`` (``model_type: "llava"`` with ``vision_config`` and ``text_config``),
``tokenizer.json`` (with the ``<image>`` token) and ``model.safetensors`` or shards with
``model.safetensors.index.json``. Both tensor layouts ``transformers`` has written are accepted:

* ``vision.X`` — legacy ``vision_tower.vision_model.X``; 4.52+ ``model.vision_tower.vision_model.X``;
* ``projector.linear_{1,2}.*`` — ``multi_modal_projector.…``; ``model.multi_modal_projector.…``;
* ``lm.blocks.{i}.q`` … (the LLaMA names of :func:`eigenkit.nn.llama_from_weights`) —
  ``language_model.model.layers.{i}.…``; ``model.language_model.layers.{i}.…``;
* ``lm.lm_head`` — ``language_model.lm_head.weight``; ``lm_head.weight``.

``save_pretrained`` of transformers 5 writes a third mix (``vision_tower.X`` without ``vision_model.``, the LM under
``language_model.model.``), so each group's prefix is detected on its own.

The hub ``config.json`` of llava-1.5 lists only the fields that differ from the ``transformers`` defaults, so absent
``text_config`` fields take ``LlamaConfig``'s defaults (LLaMA-7B: 4096 wide, 32 layers, 32 heads, 11008, RMS eps 1e-6)
and absent ``vision_config`` fields ``CLIPVisionConfig``'s.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from eigenkit.data._common import MissingDataError
from eigenkit.data._hf_llama import (
    SafetensorsReader,
    checked_weight,
    hf_llama_shapes,
    hf_llama_tokenizer,
    llama_config_from_dict,
    llama_generic_name,
    write_safetensors,
)

__all__ = ["HFLlavaCheckpoint", "hf_llava_config", "write_hf_llava"]

_LLAMA_DEFAULTS = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "rms_norm_eps": 1e-6, "vocab_size": 32000, "rope_theta": 10000.0,
                   "tie_word_embeddings": False}
_LAYOUTS = {
    "legacy": {"vision.": "vision_tower.vision_model.", "projector.": "multi_modal_projector.",
               "lm.model.": "language_model.model.", "lm.lm_head": "language_model.lm_head"},
    "v4.52": {"vision.": "model.vision_tower.vision_model.", "projector.": "model.multi_modal_projector.",
              "lm.model.": "model.language_model.", "lm.lm_head": "lm_head"},
    "v5": {"vision.": "vision_tower.", "projector.": "multi_modal_projector.",
           "lm.model.": "language_model.model.", "lm.lm_head": "language_model.lm_head"},
}
_GROUPS = ("vision.", "projector.", "lm.model.", "lm.lm_head")


def _config_path(path) -> pathlib.Path:
    p = pathlib.Path(path)
    p = p / "config.json" if p.is_dir() else p
    if not p.exists():
        raise MissingDataError(f"{p} not found: pass a Hugging Face LLaVA checkpoint directory (e.g. a copy of "
                               "llava-hf/llava-1.5-7b-hf) with config.json, tokenizer.json and the safetensors files")
    return p


def hf_llava_config(path: str | pathlib.Path):
    """:class:`eigenkit.nn.LlavaConfig` from a LLaVA ``config.json`` (or the directory holding it).

    Raises:
      MissingDataError: no ``config.json``.
      ValueError: not a LLaVA config, or a feature the port does not implement (a list of feature layers, a
        projector without bias, a non-CLIP vision tower, a non-LLaMA language model), naming the field.
    """
    from eigenkit.nn import ClipVisionConfig, LlavaConfig

    p = _config_path(path)
    c = json.loads(p.read_text())
    if c.get("model_type") != "llava":
        raise ValueError(f"{p}: model_type {c.get('model_type')!r} is not 'llava'")
    vc = c.get("vision_config") or {}
    if vc.get("model_type", "clip_vision_model") != "clip_vision_model":
        raise ValueError(f"{p}: vision_config.model_type {vc.get('model_type')!r} is not supported (CLIP only)")
    layer = c.get("vision_feature_layer", -2)
    if not isinstance(layer, int):
        raise ValueError(f"{p}: vision_feature_layer {layer!r} is not supported (one integer layer only)")
    if c.get("multimodal_projector_bias", True) is False:
        raise ValueError(f"{p}: multimodal_projector_bias=false is not supported")
    text = {**_LLAMA_DEFAULTS, **(c.get("text_config") or {})}
    return LlavaConfig(vision=ClipVisionConfig.from_hf(vc), text=llama_config_from_dict(text, where=f"{p} text_config"),
                       feature_layer=layer, select_strategy=str(c.get("vision_feature_select_strategy", "default")),
                       projector_act=str(c.get("projector_hidden_act", "gelu")),
                       image_token_index=int(c.get("image_token_index", c.get("image_token_id", 32000))))


def _generic_names(config) -> dict[str, tuple[int, ...]]:
    """``{generic name: shape}`` of every tensor of a LLaVA model, the LM ones as ``lm.model.*`` / ``lm.lm_head``
    (HF-style, mapped to :func:`eigenkit.nn.llava_from_weights` names by :func:`_to_generic`)."""
    v, t = config.vision, config.text
    p, h = v.patch_size, v.hidden
    out = {"vision.embeddings.patch_embedding.weight": (h, v.num_channels, p, p),
           "vision.embeddings.class_embedding": (h,),
           "vision.embeddings.position_embedding.weight": (v.num_patches + 1, h)}
    for ln in ("pre_layrnorm", "post_layernorm"):
        out.update({f"vision.{ln}.weight": (h,), f"vision.{ln}.bias": (h,)})
    per = {"layer_norm1": (h,), "layer_norm2": (h,), "self_attn.q_proj": (h, h), "self_attn.k_proj": (h, h),
           "self_attn.v_proj": (h, h), "self_attn.out_proj": (h, h), "mlp.fc1": (v.intermediate, h),
           "mlp.fc2": (h, v.intermediate)}
    for i in range(v.num_layers):
        for k, shape in per.items():
            out[f"vision.encoder.layers.{i}.{k}.weight"] = shape
            out[f"vision.encoder.layers.{i}.{k}.bias"] = shape[:1]
    out.update({"projector.linear_1.weight": (t.dim, h), "projector.linear_1.bias": (t.dim,),
                "projector.linear_2.weight": (t.dim, t.dim), "projector.linear_2.bias": (t.dim,)})
    for name, shape in hf_llama_shapes(t).items():
        out["lm." + name] = shape
    return out


def _to_generic(name: str) -> str:
    return "lm." + llama_generic_name(name[3:]) if name.startswith("lm.") else name


def _to_hf(name: str, layout) -> str:
    """HF name of a generic name; ``layout`` is a layout name or a ``{group prefix: HF prefix}`` dict."""
    prefixes = _LAYOUTS[layout] if isinstance(layout, str) else layout
    for a, b in prefixes.items():
        if name.startswith(a):
            return b + name[len(a):]
    raise ValueError(name)  # pragma: no cover - every generic name has a prefix above


class HFLlavaCheckpoint:
    """A Hugging Face LLaVA-1.5 checkpoint directory (either tensor layout; see the module docstring).

    Args:
      path: checkpoint directory (``config.json``, ``tokenizer.json``, safetensors file or shards).

    Raises:
      MissingDataError: the directory or its files are missing.
      ValueError: the tensors match neither layout, or a shape disagrees with ``config.json``.

    Example:
      >>> ck = HFLlavaCheckpoint("/path/to/llava-1.5-7b-hf")  # doctest: +SKIP
      >>> ck.config.vision.image_size, ck.config.text.dim  # doctest: +SKIP
      (336, 4096)
    """

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self.config = hf_llava_config(self.path)
        self.reader = SafetensorsReader(self.path)
        shapes = _generic_names(self.config)
        if self.config.text.tie_embeddings:
            shapes.pop("lm.lm_head.weight", None)
        # each group of tensors (vision tower, projector, LM body, LM head) takes the prefix under which most of its
        # tensors exist: transformers versions differ per group (see the module docstring)
        self.layout = {}
        for g in _GROUPS:
            names = [n for n in shapes if n.startswith(g)]
            options = {lay[g] for lay in _LAYOUTS.values()}
            self.layout[g] = max(sorted(options), key=lambda pre: sum(_to_hf(n, {g: pre}) in self.reader
                                                                       for n in names))
        missing = [_to_hf(n, self.layout) for n in shapes if _to_hf(n, self.layout) not in self.reader]
        if missing:
            raise ValueError(f"{self.path}: {len(missing)} of {len(shapes)} expected LLaVA tensors missing (prefixes "
                             f"{self.layout}), e.g. {missing[:3]}")
        for n, shape in shapes.items():
            got = self.reader.shape(_to_hf(n, self.layout))
            if got != shape:
                raise ValueError(f"{self.path}: tensor {_to_hf(n, self.layout)} has shape {got}, expected {shape} "
                                 "from config.json")
        self._shapes = shapes

    def weights(self) -> dict[str, np.ndarray]:
        """Every tensor (float32) under the generic names of :func:`eigenkit.nn.llava_from_weights`."""
        return {_to_generic(n): self.reader.get(_to_hf(n, self.layout)) for n in self._shapes}

    def tokenizer(self):
        """The ``tokenizers.Tokenizer`` of ``tokenizer.json`` (:func:`eigenkit.data.hf_llama_tokenizer`)."""
        return hf_llama_tokenizer(self.path)


def write_hf_llava(path: str | pathlib.Path, config, weights: dict, *, layout: str = "legacy",
                   bf16: bool = False) -> None:
    """Write a LLaVA checkpoint directory (``config.json`` + ``model.safetensors`` in ``layout``) from generic-name
    ``weights`` (:func:`eigenkit.nn.llava_weights`). Used by the tests to build tiny replicas of llava-1.5.

    Raises:
      ValueError: unknown layout, or a weight is missing or has the wrong shape.
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    v, t = config.vision, config.text
    tensors = {}
    for n, shape in _generic_names(config).items():
        if n == "lm.lm_head.weight" and t.tie_embeddings:
            continue
        tensors[_to_hf(n, layout)] = checked_weight(weights, _to_generic(n), shape)
    p = pathlib.Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / "config.json").write_text(json.dumps({
        "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
        "image_token_index": config.image_token_index, "projector_hidden_act": config.projector_act,
        "vision_feature_layer": config.feature_layer, "vision_feature_select_strategy": config.select_strategy,
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": v.hidden, "image_size": v.image_size,
                          "patch_size": v.patch_size, "num_hidden_layers": v.num_layers,
                          "num_attention_heads": v.num_heads, "intermediate_size": v.intermediate,
                          "layer_norm_eps": v.norm_eps, "hidden_act": v.act, "num_channels": v.num_channels},
        "text_config": {"model_type": "llama", "hidden_size": t.dim, "intermediate_size": t.hidden_dim,
                        "num_hidden_layers": t.num_layers, "num_attention_heads": t.num_heads,
                        "num_key_value_heads": t.num_kv_heads, "rms_norm_eps": t.norm_eps, "rope_theta": t.rope_theta,
                        "vocab_size": t.vocab_size, "tie_word_embeddings": t.tie_embeddings},
        "torch_dtype": "bfloat16" if bf16 else "float32"}, indent=2))
    write_safetensors(p / "model.safetensors", tensors, bf16=bf16, metadata={"format": "pt"})
