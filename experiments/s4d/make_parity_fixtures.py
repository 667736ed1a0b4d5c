"""Golden outputs of the official S4D code (state-spaces/s4) for eigenkit's parity tests.

Usage:
  python -m experiments.s4d.make_parity_fixtures --official-src PATH [--out tests/fixtures/s4d/official_s4d.npz]

PATH is a checkout of https://github.com/state-spaces/s4 (the fixtures record its commit via ``--commit`` or
``git rev-parse``). Needs torch (CPU) and einops. Two pieces of the official code run here, unmodified:

* ``models/s4/s4d.py``: ``S4DKernel.forward(L)`` and the full minimal ``S4D`` layer forward (SSM conv, D skip,
  GELU, Conv1d(H, 2H, 1) + GLU) on random parameters and inputs;
* ``src/models/sequence/kernels/ssm.py``: ``SSMKernelDiag`` (the full S4D kernel) for the inits diag-lin, diag-inv,
  diag-legs, diag-real and discretisations zoh, bilinear.

* ``src/models/sequence/kernels/fftconv.py``: ``FFTConv`` with ``bidirectional=True`` (S4D-Lin kernel), to pin the
  two-sided kernel layout and its deliberate off-by-one.

Only the package scaffolding is bypassed: ``src``/``src.models``/``src.models.sequence``/``src.utils`` are made
namespace packages (their ``__init__`` files import the whole training stack: pytorch-lightning, hydra, ...;
``src.models.sequence`` gets its ``SequenceModule`` from the official ``base.py``), and ``src.utils.train`` — used
only for ``get_logger`` — is replaced by a module exposing ``logging.getLogger``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pathlib
import subprocess
import sys
import types

import numpy as np

H, N, L, BATCH = 4, 8, 64, 2


def import_official(src: pathlib.Path):
    sys.path.insert(0, str(src))
    for name, sub in [("src", "src"), ("src.models", "src/models"), ("src.models.sequence", "src/models/sequence"),
                      ("src.utils", "src/utils")]:
        mod = types.ModuleType(name)
        mod.__path__ = [str(src / sub)]
        sys.modules[name] = mod
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(sys.modules[parent], child, mod)
    utils_train = types.ModuleType("src.utils.train")
    utils_train.get_logger = lambda name=__name__, level=logging.INFO: logging.getLogger(name)
    sys.modules["src.utils.train"] = utils_train
    sys.modules["src.utils"].train = utils_train
    sys.modules["src.models.sequence"].SequenceModule = importlib.import_module(
        "src.models.sequence.base").SequenceModule
    s4d = importlib.import_module("models.s4.s4d")
    ssm = importlib.import_module("src.models.sequence.kernels.ssm")
    return s4d, ssm


def _import_fftconv():
    return importlib.import_module("src.models.sequence.kernels.fftconv")


def _np(t):
    return t.detach().cpu().numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-src", required=True, type=pathlib.Path)
    ap.add_argument("--commit", default=None, help="official commit hash (default: git rev-parse HEAD in the src)")
    ap.add_argument("--out", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/s4d/official_s4d.npz")
    args = ap.parse_args(argv)
    import torch

    commit = args.commit
    if commit is None:
        commit = subprocess.run(["git", "-C", str(args.official_src), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    s4d, ssm = import_official(args.official_src.resolve())
    torch.manual_seed(0)
    out: dict[str, np.ndarray] = {"commit": np.array(commit), "H": np.array(H), "N": np.array(N), "L": np.array(L)}

    # --- minimal S4D layer (models/s4/s4d.py) ---------------------------------------------------------------
    layer = s4d.S4D(H, d_state=N, dropout=0.0, transposed=True).double()
    with torch.no_grad():  # move A_imag off its init so the test sees a generic A
        layer.kernel.A_imag.add_(torch.rand_like(layer.kernel.A_imag))
        layer.kernel.log_A_real.add_(0.3 * torch.randn_like(layer.kernel.log_A_real))
    u = torch.randn(BATCH, H, L, dtype=torch.double)
    with torch.no_grad():
        y, _ = layer(u)
        k = layer.kernel(L)
    out.update({
        "min/log_dt": _np(layer.kernel.log_dt), "min/log_A_real": _np(layer.kernel.log_A_real),
        "min/A_imag": _np(layer.kernel.A_imag), "min/C": _np(layer.kernel.C), "min/D": _np(layer.D),
        "min/W": _np(layer.output_linear[0].weight)[:, :, 0], "min/b": _np(layer.output_linear[0].bias),
        "min/u": _np(u), "min/y": _np(y), "min/K": _np(k),
    })

    # --- full SSMKernelDiag ----------------------------------------------------------------------------------
    for init in ["diag-lin", "diag-inv", "diag-legs", "diag-real"]:
        for disc in ["zoh", "bilinear"]:
            torch.manual_seed(1)
            kern = ssm.SSMKernelDiag(d_model=H, d_state=N, l_max=L, channels=1, init=init, disc=disc,
                                     backend="naive", verbose=False).double()
            with torch.no_grad():
                kk, _ = kern(L=L)
            tag = f"diag/{init}/{disc}"
            out.update({
                f"{tag}/inv_dt": _np(kern.inv_dt)[:, 0], f"{tag}/A_real": _np(kern.A_real),
                f"{tag}/A_imag": _np(kern.A_imag), f"{tag}/B": _np(kern.B)[0], f"{tag}/C": _np(kern.C)[0],
                f"{tag}/K": _np(kk)[0],
            })

    # --- bidirectional FFTConv (channels = 1, kernel channels = 2) -----------------------------------------
    fftconv = _import_fftconv()
    torch.manual_seed(2)
    conv = fftconv.FFTConv(H, l_max=L, channels=1, bidirectional=True, activation=None, transposed=True,
                           mode="diag", init="diag-lin", disc="zoh", backend="naive").double()
    u = torch.randn(BATCH, H, L, dtype=torch.double)
    with torch.no_grad():
        y, _ = conv(u)
        kk, _ = conv.kernel(L=L)
    kern = conv.kernel
    out.update({
        "bidir/inv_dt": _np(kern.inv_dt)[:, 0], "bidir/A_real": _np(kern.A_real), "bidir/A_imag": _np(kern.A_imag),
        "bidir/B": _np(kern.B)[0], "bidir/C": _np(kern.C), "bidir/D": _np(conv.D)[0], "bidir/u": _np(u),
        "bidir/y": _np(y), "bidir/K": _np(kk),
    })

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), official commit {commit}")


if __name__ == "__main__":
    main()
