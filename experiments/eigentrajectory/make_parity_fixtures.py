"""Parity fixtures: run the official InhwanBae/EigenTrajectory code (PyTorch, CPU) on ETH/UCY and save its outputs to
``tests/fixtures/eigentrajectory/official.npz``; ``tests/methods/test_eigentrajectory_parity.py`` compares
(no torch).

    python -m experiments.eigentrajectory.make_parity_fixtures --official-src /path/to/EigenTrajectory \\
        [--data ../shared/data/ethucy]

Needs ``torch`` and ``scikit-learn`` (both in the test environment). Imported **unmodified** from
``--official-src``: the package ``EigenTrajectory/`` (``model.py``, ``descriptor.py``, ``anchor.py``,
``normalizer.py``; loaded as a package by file path because of its relative imports) and the files
``utils/dataloader.py``, ``utils/metrics.py``, ``utils/utils.py`` (each by file path: ``utils/__init__.py`` would
import the trainers and every baseline). Nothing is copied.

Saved (scene ``eth``, config ``static_dist`` 0.419, ``k`` 6, 20 samples):

* ``loader_*``: ``TrajectoryDataset`` of ``eth/test`` (``obs``, ``pred`` float32, ``num_peds_in_seq``) and the
  window counts of ``eth/train`` and ``eth/val`` (the official ``os.listdir`` file order differs from ours: counts
  are compared as multisets);
* ``norm_*``: ``TrajNorm(ori, rot, sca).calculate_params / normalize / denormalize`` on the ``eth/test`` agents;
* ``init_*``: ``init_descriptor`` (train + val, ``augment_trajectory``, ``EigenTrajectory.calculate_parameters``):
  the moving mask size, ``U_obs_trunc`` / ``U_pred_trunc`` of both descriptors, both ``C_anchor``, and the top-6
  singular values from ``ETDescriptor.truncated_SVD`` of each group;
* ``fwd_*``: ``EigenTrajectory.forward(obs, pred)`` on the first ``FWD_SCENES`` windows of ``eth/test`` (one scene
  per forward, as the sequenced trainers), the backbone replaced by a deterministic stub hook — a fixed linear map
  ``W ∈ R^{k·S × (k+2)}`` per agent of ``[C_obs; obs_ori]``, reshaped to ``C_pred ∈ R^{k×N×S}`` —: ``recon_traj``
  and the three losses;
* ``metric_*``: ``compute_batch_ade`` / ``compute_batch_fde`` / ``compute_batch_tcc`` / ``compute_batch_col`` on
  random predictions of one 9-agent scene (``metric_pred`` / ``metric_gt``; official layout ``(S, N, T, 2)`` /
  ``(N, T, 2)``); TCC and COL also on a seeded random-walk scene (``metric_walk_*``: 12 agents in a 3 m square, some
  pairs within 0.2 m, some not) and on an edge-case scene (``metric_edge_*``: a constant ``y``, a static agent, a
  constant best-FDE sample — the official zero-variance rule). Each scene is one call, as ``utils/trainer.py``'s
  ``test`` (one scene per batch).

``--keep-existing`` keeps the values of the keys already in ``--out`` and adds only the missing ones (recording the
torch build that wrote them in ``added_torch_version``): the SVD's column signs depend on the torch build (2.14.1+cu130
and 2.13.0+cpu flip some), and with them ``init_u_*``, ``init_anchor_*`` and the stub forward ``fwd_*`` — all
consistent within one run, and the parity tests are sign-free where it matters, but a regenerated file then differs
in those keys. The ``metric_*`` keys depend only on the seeded inputs and the official formulas.

Status: run at ``f2f8fc3``; the committed fixture was written with torch 2.14.1+cu130, its TCC / COL keys added with
``--keep-existing`` under torch 2.13.0+cpu (a full regeneration under 2.13.0+cpu also passes every parity test).
Runtime: about 10 s (the official loader's Python loops over eth train + val, scikit-learn k-means).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import sys
import types

import numpy as np

if __package__ in (None, ""):  # run by path: make the repository root importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from experiments._official import git_commit, load_module_from_file  # noqa: E402

PINNED_COMMIT = "f2f8fc3fa58721a83c60bb407319c6cecd154dfc"
SCENE, STATIC_DIST, K, S, OBS_LEN, PRED_LEN = "eth", 0.419, 6, 20, 8, 12
FWD_SCENES = 6
REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "eigentrajectory" / "official.npz"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ethucy"


def import_official(src: pathlib.Path):
    """``(EigenTrajectory package, dataloader, metrics, utils)`` modules of the official checkout, unmodified."""
    pkg_dir = src / "EigenTrajectory"
    init = pkg_dir / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"{init} not found: is --official-src the root of InhwanBae/EigenTrajectory?")
    spec = importlib.util.spec_from_file_location("EigenTrajectory", init, submodule_search_locations=[str(pkg_dir)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["EigenTrajectory"] = pkg  # the relative imports resolve through sys.modules
    spec.loader.exec_module(pkg)
    loader = load_module_from_file(src / "utils" / "dataloader.py", "et_official_dataloader")
    metrics = load_module_from_file(src / "utils" / "metrics.py", "et_official_metrics")
    utils = load_module_from_file(src / "utils" / "utils.py", "et_official_utils")
    return pkg, loader, metrics, utils


def official_commit(src: pathlib.Path, given: str | None = None) -> str:
    commit = git_commit(src, given)
    if commit != PINNED_COMMIT:
        print(f"warning: official commit is {commit!r}, the fixtures are defined for {PINNED_COMMIT}", file=sys.stderr)
    return commit


def _dataset(loader, data: pathlib.Path, split: str):
    return loader.TrajectoryDataset(str(data / SCENE / split) + "/", obs_len=OBS_LEN, pred_len=PRED_LEN)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-src", required=True, type=pathlib.Path,
                    help="root of InhwanBae/EigenTrajectory (holds EigenTrajectory/ and utils/)")
    ap.add_argument("--official-commit", default=None, help="commit of that checkout (default: git rev-parse)")
    ap.add_argument("--data", type=pathlib.Path, default=pathlib.Path(os.environ.get("EIGENKIT_ETHUCY")
                                                                      or DEFAULT_DATA),
                    help="ETH/UCY root <root>/<scene>/<split>/*.txt (default $EIGENKIT_ETHUCY or ../shared/data)")
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    ap.add_argument("--keep-existing", action="store_true",
                    help="keep the keys already in --out unchanged, add only the missing ones")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    src = args.official_src.resolve()
    pkg, loader, metrics, utils = import_official(src)
    commit = official_commit(src, args.official_commit)
    print(f"official InhwanBae/EigenTrajectory commit: {commit}")
    utils.reproducibility_settings(seed=0)
    out = {"official_commit": np.str_(commit), "torch_version": np.str_(torch.__version__),
           "scene": np.str_(SCENE), "static_dist": np.float64(STATIC_DIST), "k": np.int64(K),
           "num_samples": np.int64(S),
           "loader": np.str_("InhwanBae/EigenTrajectory EigenTrajectory/ (package by file path), utils/dataloader.py, "
                             "utils/metrics.py, utils/utils.py imported unmodified; torch CPU float32")}

    # loader
    test = _dataset(loader, args.data, "test")
    train, val = _dataset(loader, args.data, "train"), _dataset(loader, args.data, "val")
    out.update(loader_obs=test.obs_traj.numpy(), loader_pred=test.pred_traj.numpy(),
               loader_num_peds=np.asarray(test.num_peds_in_seq), loader_train_num_peds=np.asarray(
                   train.num_peds_in_seq), loader_val_num_peds=np.asarray(val.num_peds_in_seq))
    print(f"loader: test {len(test)} windows / {len(test.obs_traj)} agents, train {len(train)}, val {len(val)}")

    # normaliser
    norm = pkg.TrajNorm(ori=True, rot=True, sca=True)
    norm.calculate_params(test.obs_traj)
    pred_n = norm.normalize(test.pred_traj)
    out.update(norm_ori=norm.traj_ori.numpy(), norm_rot=norm.traj_rot.numpy(), norm_sca=norm.traj_sca.numpy(),
               norm_obs=norm.normalize(test.obs_traj).numpy(), norm_pred=pred_n.numpy(),
               norm_roundtrip=norm.denormalize(pred_n).numpy())

    # descriptor + anchors (trainer.init_descriptor)
    hp = utils.DotDict(obs_len=OBS_LEN, pred_len=PRED_LEN, obs_svd=True, pred_svd=True, k=K, num_samples=S,
                       traj_dim=2, static_dist=STATIC_DIST)
    model = pkg.EigenTrajectory(baseline_model=None, hook_func=None, hyper_params=hp)
    obs = torch.cat([train.obs_traj, val.obs_traj], dim=0)
    pred = torch.cat([train.pred_traj, val.pred_traj], dim=0)
    obs, pred = utils.augment_trajectory(obs, pred)
    model.calculate_parameters(obs, pred)
    mask = (obs[:, -1] - obs[:, -3]).div(2).norm(p=2, dim=-1) > STATIC_DIST
    svs = {}
    for name, desc, sel in (("m", model.ET_m_descriptor, mask), ("s", model.ET_s_descriptor, ~mask)):
        o_n, p_n = desc.normalize_trajectory(obs[sel], pred[sel])
        svs[f"init_sv_obs_{name}"] = desc.truncated_SVD(o_n)[1].numpy()
        svs[f"init_sv_pred_{name}"] = desc.truncated_SVD(p_n)[1].numpy()
    out.update(init_num_moving=np.int64(mask.sum()), init_num_agents=np.int64(len(mask)),
               init_u_obs_m=model.ET_m_descriptor.U_obs_trunc.detach().numpy(),
               init_u_pred_m=model.ET_m_descriptor.U_pred_trunc.detach().numpy(),
               init_u_obs_s=model.ET_s_descriptor.U_obs_trunc.detach().numpy(),
               init_u_pred_s=model.ET_s_descriptor.U_pred_trunc.detach().numpy(),
               init_anchor_m=model.ET_m_anchor.C_anchor.detach().numpy(),
               init_anchor_s=model.ET_s_anchor.C_anchor.detach().numpy(), **svs)
    print(f"init: {int(mask.sum())} moving / {len(mask)} agents; sv_pred_m {svs['init_sv_pred_m'][:3]}")

    # forward with a stub backbone: C_pred[:, n, :] = reshape(W [C_obs; obs_ori][:, n], (k, S))
    w = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (K * S, K + 2)).astype(np.float32))
    hook = types.SimpleNamespace(
        model_forward_pre_hook=lambda c_obs, obs_ori, addl_info: torch.cat([c_obs, obs_ori], dim=0),
        model_forward=lambda x, baseline: w @ x,
        model_forward_post_hook=lambda y, addl_info: y.reshape(K, S, -1).permute(0, 2, 1))
    model.hook_func = hook
    starts = [int(s) for s, _ in test.seq_start_end[:FWD_SCENES]] + [int(test.seq_start_end[FWD_SCENES - 1][1])]
    recon, losses = [], []
    with torch.no_grad():
        for a, b in zip(starts, starts[1:]):
            o = model(test.obs_traj[a:b], test.pred_traj[a:b])
            recon.append(o["recon_traj"].numpy())
            losses.append([o["loss_eigentraj"].item(), o["loss_euclidean_ade"].item(),
                           o["loss_euclidean_fde"].item()])
    out.update(fwd_w=w.numpy(), fwd_starts=np.array(starts), fwd_recon=np.concatenate(recon, axis=1),
               fwd_losses=np.array(losses))
    print(f"forward: {FWD_SCENES} scenes, losses of scene 0 {losses[0]}")

    # metrics
    rng = np.random.default_rng(1)
    mp = rng.normal(0, 1, (S, 9, PRED_LEN, 2)).astype(np.float32)
    mg = rng.normal(0, 1, (9, PRED_LEN, 2)).astype(np.float32)
    out.update(metric_pred=mp, metric_gt=mg,
               metric_ade=metrics.compute_batch_ade(torch.from_numpy(mp), torch.from_numpy(mg)),
               metric_fde=metrics.compute_batch_fde(torch.from_numpy(mp), torch.from_numpy(mg)),
               metric_tcc=metrics.compute_batch_tcc(torch.from_numpy(mp), torch.from_numpy(mg)),
               metric_col=metrics.compute_batch_col(torch.from_numpy(mp), torch.from_numpy(mg)))
    rng = np.random.default_rng(2)
    n_walk = 12  # random walks from starts in a 3 m square: collision rates strictly between 0 and 100 occur
    start = rng.uniform(0, 3, (1, n_walk, 1, 2))
    wp = (start + np.cumsum(rng.normal(0, 0.1, (S, n_walk, PRED_LEN, 2)), axis=2)).astype(np.float32)
    wg = (start[0] + np.cumsum(rng.normal(0, 0.1, (n_walk, PRED_LEN, 2)), axis=1)).astype(np.float32)
    t = np.arange(PRED_LEN, dtype=np.float32)
    eg = np.stack([np.stack([0.5 * t, np.full_like(t, 1.25)], -1),  # constant y: TCC = r_x / 2
                   np.broadcast_to(np.float32([2.0, -1.0]), (PRED_LEN, 2)),  # static: TCC 0
                   np.stack([0.25 * t, np.sin(t)], -1)]).astype(np.float32)
    eg[2, -1] = (2.75, 0.5)  # exact float32 sums: a constant path has an exactly zero variance (no rounding noise)
    ep = (eg[None] + rng.normal(0, 0.3, (4, 3, PRED_LEN, 2))).astype(np.float32)
    ep[0, 2] = eg[2, -1]  # agent 2: its best-FDE sample (exact end) stands still: TCC 0
    for name, p_, g_ in (("walk", wp, wg), ("edge", ep, eg)):
        out[f"metric_{name}_pred"], out[f"metric_{name}_gt"] = p_, g_
        out[f"metric_{name}_tcc"] = metrics.compute_batch_tcc(torch.from_numpy(p_), torch.from_numpy(g_))
        out[f"metric_{name}_col"] = metrics.compute_batch_col(torch.from_numpy(p_), torch.from_numpy(g_))
    print(f"metrics: COL random {out['metric_col']}, walk {out['metric_walk_col']}; TCC edge {out['metric_edge_tcc']}")

    if args.keep_existing and args.out.exists():
        with np.load(args.out) as f:
            old = {k: f[k] for k in f.files}
        added = sorted(set(out) - set(old))
        out = {**out, **old}
        if added:
            out["added_torch_version"] = np.str_(torch.__version__)
        print(f"--keep-existing: kept {len(old)} arrays of {args.out}, added {added}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({len(out)} arrays, torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
