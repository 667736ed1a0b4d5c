"""Write parity fixtures from the official GCR code (innerlee/GCR ``gcr/rsgd.py`` + ``gcr/grassmann_head.py``).

    python experiments/gcr/make_parity_fixtures.py --official-src PATH [--official-commit SHA]

``PATH`` is a checkout of innerlee/GCR (the directory holding ``gcr/``). Needs PyTorch (CPU):
``pip install torch==2.13.0``. Writes ``tests/fixtures/gcr/*.npz``; ``tests/methods/test_gcr_parity.py`` compares
eigenkit against them without torch.

How the official code is loaded (honest note): ``gcr/rsgd.py`` and ``gcr/grassmann_head.py`` import registries and a
base class from mmpretrain (``mmpretrain.registry.OPTIMIZERS/MODELS``, ``mmpretrain.models.ClsHead``), which need the
whole mmengine/mmcv stack. Instead of installing it we insert *stub* modules for those three names (a registry whose
``register_module()`` returns the class unchanged, and ``ClsHead`` = a bare ``torch.nn.Module`` that accepts
``init_cfg``), then import the two official files unmodified with ``importlib``. Everything that computes — the head's
forward, its ``init_weights`` (Gaussian + QR) and the whole ``RSGD.step`` including its module-global counters —
is the official code. The global ``OPT_ITER`` is reset to 0 before each case (a fresh process would start there).
Second shim: for k > 2 the official step calls ``torch.linalg.svd(..., driver='gesvda')``, a cuSOLVER-only keyword
that raises on CPU tensors; in this (fixture-only) process ``torch.linalg.svd`` is wrapped to drop ``driver`` for CPU
inputs — the same thin SVD, computed by LAPACK instead of cuSOLVER.

Each case: C classes, features D, subspace dim k, a fixed float64 batch; the official head is initialised by its own
``init_weights``; for ``steps`` iterations we record the logits, the CE loss, and the weight after ``RSGD.step``
(gradients by torch autograd through the official forward + ``F.cross_entropy``).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import types

import numpy as np

from experiments._official import git_commit, load_module_from_file

CASES = [
    # name, C, D, k, batch, lr, momentum, reorth_step, lr_factor, steps
    ("one_step_reorth1", 5, 12, 3, 16, 0.2, 0.9, 1, 1.0, 1),
    ("steps8_reorth5_lrf2", 5, 12, 3, 16, 0.1, 0.9, 5, 2.0, 8),
    ("steps6_reorth1_k1", 4, 10, 1, 16, 0.2, 0.9, 1, 1.0, 6),
    ("steps6_nomomentum_k4", 3, 9, 4, 12, 0.1, 0.0, 3, 1.0, 6),
]


def install_stubs():
    import torch

    class _Registry:
        def register_module(self, *a, **k):
            return lambda cls: cls

    class ClsHead(torch.nn.Module):
        def __init__(self, init_cfg=None, **kwargs):
            super().__init__()

    mm = types.ModuleType("mmpretrain")
    reg = types.ModuleType("mmpretrain.registry")
    reg.OPTIMIZERS = _Registry()
    reg.MODELS = _Registry()
    models = types.ModuleType("mmpretrain.models")
    models.ClsHead = ClsHead
    mm.registry, mm.models = reg, models
    sys.modules.update({"mmpretrain": mm, "mmpretrain.registry": reg, "mmpretrain.models": models})


def install_cpu_svd_shim():
    import torch

    svd = torch.linalg.svd

    def svd_cpu(a, *args, driver=None, **kwargs):
        if a.is_cuda:
            return svd(a, *args, driver=driver, **kwargs)
        return svd(a, *args, **kwargs)

    torch.linalg.svd = svd_cpu


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-src", required=True, type=pathlib.Path, help="innerlee/GCR checkout (holds gcr/)")
    ap.add_argument("--official-commit", default=None, help="commit of that checkout (default: git rev-parse)")
    ap.add_argument("--out", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "gcr")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    install_stubs()
    install_cpu_svd_shim()
    src = args.official_src.resolve()
    rsgd = load_module_from_file(src / "gcr" / "rsgd.py", "gcr_official_rsgd")
    headmod = load_module_from_file(src / "gcr" / "grassmann_head.py", "gcr_official_head")
    commit = git_commit(src, args.official_commit)
    args.out.mkdir(parents=True, exist_ok=True)

    for i, (name, c, d, k, b, lr, mom, reorth, lrf, steps) in enumerate(CASES):
        torch.manual_seed(1000 + i)
        rng = np.random.default_rng(1000 + i)
        feats = rng.standard_normal((b, d))
        labels = rng.integers(0, c, b)
        head = headmod.GrassmannClsHead(num_classes=c, in_channels=d, dims=[k] * c, gamma=25.0).double()
        head.init_weights()
        w0 = head.fc.weight.detach().numpy().copy()
        rsgd.OPT_ITER = 0  # the official counter is a module global; a fresh process starts at 0
        opt = rsgd.RSGD(head.parameters(), lr=lr, momentum=mom, reorth_step=reorth, lr_factor=lrf)
        x = torch.from_numpy(feats)
        y = torch.from_numpy(labels)
        ws, logits, losses = [], [], []
        for _ in range(steps):
            opt.zero_grad()
            out = head((x,))
            loss = F.cross_entropy(out, y)
            loss.backward()
            logits.append(out.detach().numpy().copy())
            losses.append(float(loss))
            opt.step()
            ws.append(head.fc.weight.detach().numpy().copy())
        logits.append(head((x,)).detach().numpy().copy())
        path = args.out / f"rsgd_{name}.npz"
        np.savez(
            path, features=feats, labels=labels, w0=w0, weights=np.stack(ws), logits=np.stack(logits),
            losses=np.asarray(losses), num_classes=c, subspace_dim=k, lr=lr, momentum=mom, reorth_step=reorth,
            lr_factor=lrf, gamma=25.0, steps=steps, official_commit=commit, torch_version=torch.__version__,
            loader="official gcr/rsgd.py + gcr/grassmann_head.py imported unmodified with stub mmpretrain registries",
        )
        print(f"wrote {path} (official {commit[:12]}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
