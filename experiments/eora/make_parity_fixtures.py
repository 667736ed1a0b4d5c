"""Write tests/fixtures/eora/*.npz from the official NVlabs/EoRA code, run unmodified on CPU PyTorch.

    python experiments/eora/make_parity_fixtures.py --official-src /path/to/NVlabs/EoRA [--out tests/fixtures/eora]

``--official-src`` is a checkout of https://github.com/NVlabs/EoRA (pinned commit below; the folder holding ``EoRA/``
or ``EoRA/`` itself). Needs ``pip install torch==2.13.0`` (CPU). The official modules import packages that the
computations used here never touch (transformers' ``Conv1D`` type check, lm_eval, datasets, safetensors, wandb); those
are replaced by empty stand-ins in ``sys.modules``. ``tensor.to("cuda")`` is redirected to the CPU and
``torch.cuda.synchronize`` is a no-op. Nothing of the official code is copied.

Fixtures:
* ``eigen.npz`` — ``llama_sequential_eigen`` on a one-block toy "model" with two linears (``up``: 64 -> 96,
  ``down``: 96 -> 64), 4 calibration sequences of 64 tokens (vocabulary 1000, so the covariances are nonsingular), ``eigen_nsamples = 4``, ``eigen_r = 16``: the inputs each
  linear's hook saw, original and compressed weights, and the official ``lora_A`` / ``lora_B``.
* ``gptq.npz`` — ``GPTQ.add_batch`` + ``fasterquant`` (3-bit, per-row asymmetric, act-order on/off, blocksize 128,
  percdamp 0.01) on a 32 x 160 layer (two blocks); the Hessian and the quantised weights.
* ``sparsegpt.npz`` — ``SparseGPT.fasterquant_wo_replcaing_weight`` 2:4, without and with the 4-bit quantiser.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pathlib
import sys
import types

import numpy as np

COMMIT = "11ff6c0e1c90862945c9fd524c07637be2fbbb12"


def _stub_modules():
    import torch

    tr = types.ModuleType("transformers")

    class Conv1D(torch.nn.Module):  # only used in isinstance checks
        pass

    tr.Conv1D = Conv1D
    tr.LlamaForCausalLM = None
    sys.modules.setdefault("transformers", tr)
    lm = types.ModuleType("lm_eval")
    base = types.ModuleType("lm_eval.base")
    base.BaseLM = object
    lm.base, lm.evaluator, lm.utils = base, types.ModuleType("lm_eval.evaluator"), types.ModuleType("lm_eval.utils")
    for name, mod in {"lm_eval": lm, "lm_eval.base": base, "lm_eval.evaluator": lm.evaluator,
                      "lm_eval.utils": lm.utils}.items():
        sys.modules.setdefault(name, mod)
    ds = types.ModuleType("datasets")
    ds.load_dataset = None
    sys.modules.setdefault("datasets", ds)
    st = types.ModuleType("safetensors")
    stt = types.ModuleType("safetensors.torch")
    stt.save_file = None
    st.torch = stt
    sys.modules.setdefault("safetensors", st)
    sys.modules.setdefault("safetensors.torch", stt)
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    orig_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple("cpu" if (isinstance(a, str) and a.startswith("cuda")) else a for a in args)
        return orig_to(self, *args, **kwargs)

    torch.Tensor.to = to


def import_official(src: pathlib.Path):
    src = src / "EoRA" if (src / "EoRA" / "eora.py").exists() else src
    if not (src / "eora.py").exists():
        raise SystemExit(f"eora.py not found under {src}")
    _stub_modules()
    sys.path.insert(0, str(src))
    import eora as official  # noqa: E402
    import gptq as official_gptq  # noqa: E402
    import quant as official_quant  # noqa: E402
    import sparsegpt as official_sparsegpt  # noqa: E402

    return official, official_gptq, official_quant, official_sparsegpt


def one_block_model(block, embed, hidden_size: int, seqlen: int):
    """The smallest "LLaMA" the official ``llama_sequential_*`` functions accept: ``model.model.{embed_tokens, norm,
    layers}``, ``model.config.{use_cache, hidden_size}``, ``model.seqlen``, with one ``block``."""
    from torch import nn

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = embed
            self.norm = nn.Identity()
            self.layers = nn.ModuleList([block])

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()
            self.config = types.SimpleNamespace(use_cache=False, hidden_size=hidden_size)
            self.seqlen = seqlen

        def forward(self, tokens):
            return self.model.layers[0](self.model.embed_tokens(tokens), attention_mask=None)

    return Model()


def make_eigen(official, rng):
    import torch
    from torch import nn

    d, h, n, l, r = 64, 96, 4, 64, 16

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(d, h, bias=False)
            self.down = nn.Linear(h, d, bias=False)

        def forward(self, x, attention_mask=None):
            return (x + self.down(torch.relu(self.up(x))),)

    torch.manual_seed(0)
    embed = nn.Embedding(1000, d)  # drawn first after the seed (the fixture's embedding)
    model = one_block_model(Block(), embed, d, l)
    with torch.no_grad():
        for lin in (model.model.layers[0].up, model.model.layers[0].down):
            lin.weight.copy_(torch.from_numpy(rng.standard_normal(lin.weight.shape).astype(np.float32) * 0.2))
        model.model.embed_tokens.weight.mul_(torch.linspace(0.2, 2.0, d))
    block = model.model.layers[0]
    w_up, w_down = block.up.weight.detach().clone(), block.down.weight.detach().clone()
    compressed = {"model.layers.0.up": w_up + 0.05 * torch.from_numpy(rng.standard_normal(w_up.shape).astype(np.float32)),
                  "model.layers.0.down": w_down + 0.05 * torch.from_numpy(
                      rng.standard_normal(w_down.shape).astype(np.float32))}
    tokens = torch.from_numpy(rng.integers(0, 1000, (n, l)))
    seen = {"up": [], "down": []}
    hooks = [getattr(block, k).register_forward_hook(lambda m, i, o, k=k: seen[k].append(i[0].detach().clone()))
             for k in seen]
    official.args = types.SimpleNamespace(eigen_nsamples=n, eigen_r=r)
    with contextlib.redirect_stdout(io.StringIO()):
        lowrank = official.llama_sequential_eigen(model, [(tokens[j:j + 1],) for j in range(n)], compressed, "cpu")
    for hk in hooks:
        hk.remove()
    out = {"num_samples": np.int64(n), "rank": np.int64(r)}
    for k, w in (("up", w_up), ("down", w_down)):
        out[f"x_{k}"] = torch.stack(seen[k][:n]).numpy()  # (n, 1, l, d_in): the hook inputs, in call order
        out[f"w_{k}"] = w.numpy()
        out[f"wc_{k}"] = compressed[f"model.layers.0.{k}"].numpy()
        out[f"a_{k}"] = lowrank[f"base_model.model.model.layers.0.{k}.lora_A.weight"].numpy()
        out[f"b_{k}"] = lowrank[f"base_model.model.model.layers.0.{k}.lora_B.weight"].numpy()
    return out


def official_gptq_layer(official_gptq, official_quant, w: np.ndarray, bits: int):
    """``(nn.Linear holding w, official GPTQ object on it)`` with the ``bits``-bit per-row asymmetric quantiser the
    EoRA experiments use (``quant.Quantizer.configure(bits, perchannel=True, sym=False, mse=False)``)."""
    import torch
    from torch import nn

    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
    g = official_gptq.GPTQ(lin)
    g.quantizer = official_quant.Quantizer()
    g.quantizer.configure(bits, perchannel=True, sym=False, mse=False)
    return lin, g


def make_gptq(official_gptq, official_quant, rng):
    import torch

    d_out, d_in, n_tok = 32, 160, 512
    w = rng.standard_normal((d_out, d_in)).astype(np.float32)
    x = (rng.standard_normal((n_tok, d_in)) * np.linspace(0.1, 2.0, d_in)).astype(np.float32)
    out = {"w": w}
    for act in (False, True):
        lin, g = official_gptq_layer(official_gptq, official_quant, w, 3)
        for chunk in np.split(x, 4):
            g.add_batch(torch.from_numpy(chunk)[None], None)
        out["hessian"] = g.H.numpy().copy()
        with contextlib.redirect_stdout(io.StringIO()):
            g.fasterquant(blocksize=128, percdamp=0.01, groupsize=-1, actorder=act)
        out[f"q_actorder{int(act)}"] = lin.weight.detach().numpy().copy()
    return out


def make_sparsegpt(official_sparsegpt, official_quant, rng):
    import torch
    from torch import nn

    d_out, d_in, n_tok = 32, 160, 512
    w = rng.standard_normal((d_out, d_in)).astype(np.float32)
    x = (rng.standard_normal((n_tok, d_in)) * np.linspace(0.1, 2.0, d_in)).astype(np.float32)
    out = {"w": w}
    for bits in (16, 4):
        lin = nn.Linear(d_in, d_out, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        s = official_sparsegpt.SparseGPT(lin)
        if bits < 16:
            s.quantizer = official_quant.Quantizer()
            s.quantizer.configure(bits, perchannel=True, sym=False, mse=False)
        s.add_batch(torch.from_numpy(x)[None], None)
        out["hessian"] = s.H.numpy().copy()
        with contextlib.redirect_stdout(io.StringIO()):
            wc = s.fasterquant_wo_replcaing_weight(0.5, prunen=2, prunem=4, blocksize=128, percdamp=0.01)
        out[f"w_c_bits{bits}"] = wc.detach().numpy().copy()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official-src", required=True, type=pathlib.Path)
    p.add_argument("--out", type=pathlib.Path,
                   default=pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "eora")
    a = p.parse_args()
    official, og, oq, osg = import_official(a.official_src)
    import torch

    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    meta = {"commit": np.array(COMMIT), "torch": np.array(torch.__version__)}
    for name, fn in (("eigen", lambda: make_eigen(official, rng)), ("gptq", lambda: make_gptq(og, oq, rng)),
                     ("sparsegpt", lambda: make_sparsegpt(osg, oq, rng))):
        arrays = fn()
        np.savez_compressed(a.out / f"{name}.npz", **arrays, **meta)
        print(f"wrote {a.out / name}.npz ({', '.join(sorted(arrays))})")


if __name__ == "__main__":
    main()
