"""Parity fixtures: run the official Graph-COM/SPE ``StableExpressivePE`` (GINPhi ρ + MLP φ list) in PyTorch on
a few small graphs and save its inputs, weights, W tensors and PEs to ``tests/fixtures/spe/spe_parity.npz``.
``tests/methods/test_spe_parity.py`` loads the weights (the official ``state_dict`` keys, prefixed ``param/`` for the
SPE and ``model/`` for the whole ``Model``) with ``eigenkit.methods.spe.load_official_state_dict`` and compares
(no torch).

    python -m experiments.spe.make_parity_fixtures --official-src /path/to/Graph-COM/SPE [--pyg-path DIR]

Needs ``torch`` (``pip install torch==2.13.0``) and ``torch_geometric`` (``pip install --no-deps torch_geometric
xxhash``; ``--pyg-path`` adds a ``pip install --target`` directory to ``sys.path``). The official ``src/utils.py``
imports ``torchmetrics`` for an AUROC metric that the PE code never uses; a stub module stands in for it (nothing of
the official computation is replaced). The official code is imported from ``--official-src``, never copied.

Setup (mirrors ``configs/zinc/SPE_gine_gin_mlp_pe37.yaml`` at reduced width so the fixture stays small):
φ = 4 MLPs 1 → 8 → 8 → 1 with BatchNorm (``n_psis``, ``psi_hidden_dims``), ρ = ``GINPhi`` with 3 GIN layers, MLPs of
3 layers / width 16 with BatchNorm, ``pe_dims`` 6; D = 8 eigenpairs (graphs with n < 8 are zero-padded, larger ones
truncated, official ``d = min(n, D)``). BatchNorm running statistics are randomised so eval mode is a real test;
train mode (batch statistics, official unmasked) is saved too.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import types

import numpy as np

N_PSIS, PSI_HIDDEN, RHO_LAYERS, RHO_HIDDEN, PE_DIMS, D = 4, 8, 3, 16, 6, 8


def _graphs(rng):
    def cycle(n):
        return [(i, (i + 1) % n) for i in range(n)]

    def path(n):
        return [(i, i + 1) for i in range(n - 1)]

    er = [(i, j) for i in range(9) for j in range(i + 1, 9) if rng.random() < 0.35] + path(9)
    mol = path(10) + [(0, 5), (3, 8), (9, 10), (10, 11)]  # two fused rings + a tail, 12 nodes
    out = []
    for n, edges in ((6, cycle(6)), (5, path(5)), (9, sorted(set(er))), (12, mol)):
        e = np.array(edges).T
        out.append((n, np.concatenate([e, e[::-1]], axis=1)))
    return out


def import_official(official_src, pyg_path=None) -> None:
    """Make the official Graph-COM/SPE code importable as ``src.*`` from the checkout ``official_src`` (the folder
    holding ``src/``; put first on ``sys.path``, nothing is copied), with ``pyg_path`` (a ``pip install --target``
    directory holding ``torch_geometric``) on ``sys.path`` too when given. ``src/utils.py`` imports ``torchmetrics``
    for an AUROC metric the PE code never uses: a stub module stands in for it (nothing of the computation is
    replaced). Shared with ``experiments/benchmarks/spe.py``."""
    if pyg_path:
        sys.path.insert(0, str(pyg_path))
    sys.path.insert(0, str(official_src))
    stub = types.ModuleType("torchmetrics")
    stub.classification = types.ModuleType("torchmetrics.classification")
    stub.classification.BinaryAUROC = object
    sys.modules.setdefault("torchmetrics", stub)
    sys.modules.setdefault("torchmetrics.classification", stub.classification)


def _full_model_fixture(args, rng) -> dict:
    """The official ``Model`` (node embedding + SPE + GINE base model, ZINC wiring) on 3 molecule-like graphs.

    Official ``GINELayer`` hard-codes the PE width 37 (quirk 1), so this fixture uses ``pe_dims = 37``.
    """
    import torch
    from src.mlp import MLP  # official
    from src.model import GINEBaseModel, Model  # official
    from src.stable_expressive_pe import GINPhi, StableExpressivePE  # official
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import get_laplacian, to_dense_adj

    torch.manual_seed(1)
    width, pe_dims, n_types, n_edge_types, d = 16, 37, 6, 3, 12

    def create_mlp(i, o):
        return MLP(3, i, width, o, True, "relu", 0.0)

    psis = [MLP(3, 1, PSI_HIDDEN, 1, use_bn=True, activation="relu", dropout_prob=0.0) for _ in range(N_PSIS)]
    pe = StableExpressivePE(GINPhi(2, N_PSIS, width, pe_dims, create_mlp, bn=False), psis)
    base = GINEBaseModel(2, n_edge_types, width, width, create_mlp, residual=True, feature_type="discrete",
                         pooling="mean")
    model = Model(n_types, width, positional_encoding=pe, base_model=base, pe_aggregate="add")
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0.0, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    datas = []
    for n, ei in _graphs(rng)[1:]:
        ei_t = torch.tensor(ei, dtype=torch.long)
        l_idx, l_val = get_laplacian(ei_t, normalization="sym", num_nodes=n)
        lap = to_dense_adj(l_idx, edge_attr=l_val, max_num_nodes=n).squeeze(0)
        lam_t, v_t = torch.linalg.eigh(lap)
        k = min(n, d)
        lam, v = torch.zeros(1, d), torch.zeros(n, d)
        lam[0, :k], v[:, :k] = lam_t[:k], v_t[:, :k]
        et = torch.tensor(rng.integers(1, n_edge_types + 1, ei.shape[1] // 2))
        datas.append(Data(x=torch.tensor(rng.integers(0, n_types, (n, 1))), edge_index=ei_t,
                          edge_attr=torch.cat([et, et]), Lambda=lam, V=v, y=torch.zeros(1)))
    batch = Batch.from_data_list(datas)
    model.eval()
    with torch.no_grad():
        y_eval = model(batch).numpy()
    params = {f"model/{k}": t.detach().numpy().copy() for k, t in model.state_dict().items()
              if "num_batches" not in k}
    model.train()
    with torch.no_grad():
        y_train = model(batch).numpy()
    return {**params, "model_x": batch.x.numpy()[:, 0], "model_edge_index": batch.edge_index.numpy(),
            "model_edge_attr": batch.edge_attr.numpy(), "model_Lambda": batch.Lambda.numpy(),
            "model_V": batch.V.numpy(), "model_n_node": np.array([dd.num_nodes for dd in datas]),
            "model_y_eval": y_eval, "model_y_train": y_train,
            "model_sizes": np.array([width, pe_dims, n_types, n_edge_types, d, N_PSIS, PSI_HIDDEN])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-src", required=True, help="checkout of Graph-COM/SPE (the folder holding src/)")
    ap.add_argument("--pyg-path", default=None, help="extra sys.path entry holding torch_geometric")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/spe/"
                                         "spe_parity.npz"))
    args = ap.parse_args()
    import_official(args.official_src, args.pyg_path)

    import torch
    from src.mlp import MLP  # official
    from src.stable_expressive_pe import GINPhi, StableExpressivePE  # official
    from torch_geometric.utils import get_laplacian, to_dense_adj

    try:
        commit = subprocess.run(["git", "-C", args.official_src, "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout; the pinned commit is 22b10033564119f5296bf76d2c012489ef2b4aac)"

    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def create_mlp(i, o):
        return MLP(3, i, RHO_HIDDEN, o, True, "relu", 0.0)

    psis = [MLP(3, 1, PSI_HIDDEN, 1, use_bn=True, activation="relu", dropout_prob=0.0) for _ in range(N_PSIS)]
    rho = GINPhi(RHO_LAYERS, N_PSIS, RHO_HIDDEN, PE_DIMS, create_mlp, bn=False)
    model = StableExpressivePE(rho, psis)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0.0, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)

    graphs = _graphs(rng)
    lams, vs, eis, batch_vec = [], [], [], []
    offset = 0
    for b, (n, ei) in enumerate(graphs):  # official preprocessing (zinc/trainer.py pre_transform)
        ei_t = torch.tensor(ei, dtype=torch.long)
        l_idx, l_val = get_laplacian(ei_t, normalization="sym", num_nodes=n)
        lap = to_dense_adj(l_idx, edge_attr=l_val, max_num_nodes=n).squeeze(0)
        lam_t, v_t = torch.linalg.eigh(lap)
        d = min(n, D)
        lam = torch.zeros(1, D)
        v = torch.zeros(n, D)
        lam[0, :d], v[:, :d] = lam_t[:d], v_t[:, :d]
        lams.append(lam)
        vs.append(v)
        eis.append(ei_t + offset)
        batch_vec.append(torch.full((n,), b, dtype=torch.long))
        offset += n
    lam, v = torch.cat(lams), torch.cat(vs)
    edge_index, batch = torch.cat(eis, 1), torch.cat(batch_vec)

    captured = {}
    inner = model.phi.forward

    def capture(w_list, ei):
        captured["W"] = [w.detach().numpy().copy() for w in w_list]
        return inner(w_list, ei)

    model.phi.forward = capture
    model.eval()
    with torch.no_grad():
        pe_eval = model(lam, v, edge_index, batch).numpy()
    w_list = captured["W"]
    params = {f"param/{k}": t.detach().numpy().copy() for k, t in model.state_dict().items() if "num_batches" not in k}
    model.train()
    with torch.no_grad():
        pe_train = model(lam, v, edge_index, batch).numpy()
    w_list_train = captured["W"]

    n_max = max(n for n, _ in graphs)

    def padded(ws):
        w_pad = np.zeros((len(graphs), n_max, n_max, N_PSIS), np.float32)
        for b, w in enumerate(ws):
            w_pad[b, :w.shape[0], :w.shape[1]] = w
        return w_pad
    out = dict(params)  # weights and running statistics as used in eval mode (before the train-mode call)
    out.update({
        "Lambda": lam.numpy(), "V": v.numpy(), "edge_index": edge_index.numpy(), "batch": batch.numpy(),
        "n_node": np.array([n for n, _ in graphs]), "W_eval": padded(w_list), "W_train": padded(w_list_train),
        "pe_eval": pe_eval, "pe_train": pe_train,
        "sizes": np.array([N_PSIS, PSI_HIDDEN, RHO_LAYERS, RHO_HIDDEN, PE_DIMS, D]),
        "commit": np.array(commit), "torch_version": np.array(torch.__version__),
    })
    out.update(_full_model_fixture(args, rng))
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size} bytes), official commit {commit}")


if __name__ == "__main__":
    main()
