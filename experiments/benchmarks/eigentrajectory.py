"""EigenTrajectory throughput: scenes/s of a train step and of 20-mode inference, on 1 vs 8 (fake CPU) devices, and
against the official PyTorch wrapper (``InhwanBae/EigenTrajectory``) in the same run.

    python -m experiments.benchmarks.eigentrajectory --official-src PATH_TO_EigenTrajectory \\
        [--out experiments/benchmarks/results/eigentrajectory.json] [--data-dir ../shared/data/ethucy] \\
        [--scenes-per-batch 64] [--bucket 16] [--steps 10] [--repeats 5] [--threads 2] [--ab-rounds R]
    python -m experiments.benchmarks.eigentrajectory --official-src PATH --threads 1 \\
        --out /tmp/bench_eigentrajectory_1thread.json   # the single-thread control
    python -m experiments.benchmarks.eigentrajectory --official-src PATH --scenes-per-batch 8 --steps 2 \\
        --repeats 2 --out /tmp/bench_eigentrajectory_small.json   # checks it runs; timings meaningless

**Batch.** One fixed batch of ``--scenes-per-batch`` padded scenes (default 64, a multiple of 8) of one agent-count
bucket (``--bucket``, default 16 slots; ``Buckets`` of ``experiments/eigentrajectory/train.py``; the most populated
bucket when that one is empty, said in ``data.bucket_note``): the first windows of the bucket in data order (cycled
when the bucket has fewer). Data: ETH/UCY scene ``eth`` (leave-one-out split: ``train`` windows) from ``--data-dir``
(default ``$EIGENKIT_ETHUCY``, else ``../shared/data/ethucy`` beside the repository when it exists), else the
synthetic ``eigenkit.data.social_force_crowd`` (``data.source`` says which). ``data.real_agents`` is the number of
real (unpadded) agents of the batch; every rate is reported as **scenes/s** (``scenes_per_batch / time``) and
**agents/s** (real agents / time). Everything is float32.

Sections of the JSON:

* ``ours_full`` — **the algorithm**: the experiment's model (``build_model`` of the cpu preset: the masked social
  transformer, hidden 64, 2 layers) in ET space (``et``: :class:`ETForecaster`, descriptor + anchors from
  ``fit_constants`` on eth train + val) and its Euclidean twin (``euclidean``), per space:
  ``train`` = one ``eigenkit.train.make_train_step`` step (``et_loss_fn`` / ``euclidean_loss_fn``, AdamW + clip 10 of
  ``optimizer``, ``TrainState`` on a mesh of ``eigenkit.train.make_mesh``) and ``inference`` =
  ``jit(scene_forecasts)`` (20 futures per agent) on the batch. ``compile_s`` (``lower().compile()``), the first
  call and the steady state (median over ``--repeats`` windows of ``--steps`` calls, each call waited for with
  ``block_until_ready``) apart. ``one_device`` runs in this process (mesh of one CPU device), ``<n>_devices``
  (``--multi-devices``, default 8) in a child process of this script (``--devices n``), because
  ``--xla_force_host_platform_device_count`` must be in ``XLA_FLAGS`` before JAX starts; the child gets the same
  ``--threads`` (its affinity, ``pin_threads``), the very same batch and constants (pickled by the parent).
  Each multi-device step is waited for before the next: with 8 fake devices on 2 cores, XLA:CPU's all-reduce
  rendezvous can deadlock when many steps are in flight (as in ``train_step.py``). On a CPU the 8 devices share the
  same cores, so ``ratio_*_ndev_over_1dev`` (time ratios, > 1: the mesh is slower) measure the partitioning
  overhead, not a speed-up. Correctness first: the child's first loss, gradient norm and inference futures must
  equal the parent's (``correctness_devices``; relative 1e-4 / 1e-3, futures 1e-4 m + 1e-4 relative), and its
  parameters after one step within 5e-3 (one AdamW step moves a weight by about lr = 1e-3 whatever its gradient, so
  float-rounded near-zero gradients may move it the other way).
* ``baseline`` — **the framework**: the official ``EigenTrajectory`` model (``EigenTrajectory/`` package of
  ``--official-src`` imported unmodified, as ``experiments/eigentrajectory/make_parity_fixtures.py`` does; commit
  recorded, pinned ``f2f8fc3``), descriptor and anchors fitted by its own ``calculate_parameters`` (official k-means,
  ``n_init`` 10) on the same eth train + val windows with ``augment_trajectory``, and the **same deterministic stub
  backbone** on both sides — a fixed linear map ``W ∈ R^{k·S × (k+2)}`` per agent of ``[C_obs; obs_ori]`` (the
  fixture script's hook; ours: :class:`LinearStub`, an nnx module of the backbone contract ``backbone(x, pos, mask)
  -> (n, S·k)`` holding ``W`` with its rows permuted to our ``(S, k)`` layout) — so both run the identical algorithm
  and constants (official ``U`` and anchors loaded into our ``ETDescriptor`` / ``ETAnchors``), and the times compare
  the implementations: official = the "sequenced" trainer (``ETSequencedMiniBatchTrainer.train``: one scene per
  forward, a Python loop over the batch's scenes with only their real agents, losses summed, divided by the batch
  size, one ``backward``, ``clip_grad_norm_`` 10, ``AdamW`` step) and, for inference, its ``test`` loop
  (``torch.no_grad``, one forward per scene); ours = the same batch padded and ``vmap``-ped (``et_loss_fn`` through
  ``make_train_step`` with the same AdamW + clip, 1 device; ``jit(scene_forecasts)``). Data loading is outside both
  timings (tensors / device arrays prepared beforehand). Correctness first (the run stops before timing if it
  fails): on the same batch and weights, our futures equal the official ``recon_traj`` of every scene (``atol``
  1e-4 m, ``rtol`` 1e-4), the batch loss to 1e-4 relative and ``∂loss/∂W`` to 1e-3 of its largest entry; the max
  differences are in ``baseline.correctness``. ``speedup_*`` = ours scenes/s over official scenes/s (> 1: ours
  faster). Without ``--official-src`` the section is skipped, with a note.

Threads: ``--threads N`` pins this process and the child (XLA through the CPU affinity, torch through
``set_num_threads``; ``_common.pin_threads``) to N cores; ``threads`` records the report, ``torch.get_num_threads()``
and the measured CPU/wall ratio of each side. ``--ab-rounds R`` (> 0) also times the sides interleaved round by
round (``interleaved_ab``): ``et`` vs ``euclidean`` in each process, ours vs official in ``baseline``. The load
average is recorded before and after: **time only on an idle machine**.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

from experiments.benchmarks._common import (
    check_load,
    first_and_median,
    interleaved_ab,
    machine_info,
    measured_parallelism,
    parser,
    pin_threads,
    write_result,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
SCENE = "eth"
MULTI_DEVICES = 8
SPACES = ("et", "euclidean")
DEVICE_LOSS_RTOL, DEVICE_GRAD_NORM_RTOL, FUT_ATOL, FUT_RTOL, DEVICE_PARAM_ATOL = 1e-4, 1e-3, 1e-4, 1e-4, 5e-3
BASE_LOSS_RTOL, BASE_GRAD_RTOL = 1e-4, 1e-3


def default_data_dir() -> str | None:
    """``$EIGENKIT_ETHUCY``, else ``../shared/data/ethucy`` beside the repository when it exists, else None."""
    env = os.environ.get("EIGENKIT_ETHUCY", "")
    if env:
        return env
    shared = REPO.parent / "shared" / "data" / "ethucy"
    return str(shared) if shared.is_dir() else None


def config_for(data_dir: str | None):
    """The cpu preset of the experiment, on ETH/UCY (``data_dir``) or the synthetic crowd (None)."""
    from experiments.eigentrajectory.configs import cpu

    config = cpu.get_config()
    config.dataset = "ethucy" if data_dir else "synthetic"
    config.data_dir = data_dir or ""
    return config


def select_batch(groups: dict[int, tuple[np.ndarray, np.ndarray]], bucket: int, scenes: int) -> tuple[dict, dict]:
    """``(batch, info)``: the first ``scenes`` windows (cycled) of bucket ``bucket`` of ``Buckets.groups`` (the most
    populated bucket when that one is empty)."""
    note = None
    if bucket not in groups:
        chosen = max(groups, key=lambda b: len(groups[b][0]))
        note = f"bucket {bucket} is empty in this split; used the most populated bucket {chosen}"
        bucket = chosen
    pos, mask = groups[bucket]
    idx = np.arange(scenes) % len(pos)
    batch = {"traj": np.ascontiguousarray(pos[idx], np.float32), "mask": np.ascontiguousarray(mask[idx])}
    info = {"bucket": bucket, "bucket_note": note, "windows_in_bucket": int(len(pos)),
            "cycled": bool(len(pos) < scenes), "scenes_per_batch": scenes,
            "real_agents": int(batch["mask"].sum()), "agent_slots": int(batch["mask"].size)}
    return batch, info


def prepare(args) -> tuple[dict, dict]:
    """``(shared, data)``: what the child needs too (config source, batch, our fitted constants, data info), and the
    train / val windows (for the official fit)."""
    from experiments.eigentrajectory import train as ett

    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    if data_dir is not None and not pathlib.Path(data_dir).is_dir():
        raise SystemExit(f"--data-dir {data_dir} is not a folder (<root>/<scene>/<split>/*.txt)")
    config = config_for(data_dir)
    scene = SCENE if data_dir else ett.SYNTHETIC
    t0 = time.perf_counter()
    data = ett.load_scene(config, scene)
    constants = ett.fit_constants(config, data, scene)
    fit_s = time.perf_counter() - t0
    buckets = ett.Buckets(data["train"], config.buckets, args.bucket * args.scenes_per_batch, 1)
    batch, info = select_batch(buckets.groups, args.bucket, args.scenes_per_batch)
    info.update(source="ethucy" if data_dir else "synthetic (eigenkit.data.social_force_crowd; no ETH/UCY folder)",
                data_dir=data_dir, scene=scene, split="train", static_dist=ett.static_dist(config, scene),
                load_and_fit_constants_s=fit_s)
    return {"data_dir": data_dir, "scene": scene, "batch": batch, "constants": constants, "info": info}, data


# ------------------------------------------------------------------------------------------------- ours, full model


def _timed(fn, repeats: int, steps: int) -> tuple[dict, object]:
    """First window and median window of ``steps`` calls of ``fn`` (each blocking), per call."""
    def window():
        for _ in range(steps):
            fn()

    first, med = first_and_median(window, repeats)
    return {"first_window_s": first / steps, "call_s": med / steps}, window


def _rates(row: dict, info: dict) -> dict:
    t = row["call_s"]
    return {**row, "scenes_per_s": info["scenes_per_batch"] / t, "agents_per_s": info["real_agents"] / t}


def bench_ours(shared: dict, n_devices: int, repeats: int, steps: int, ab_rounds: int) -> tuple[dict, dict, dict]:
    """``(rows, arrays, runs)`` of the full model in both spaces on a mesh of the first ``n_devices`` devices: the
    timing rows, what the 1-vs-n check compares, and the blocking closures (for the CPU/wall ratio)."""
    import jax
    from flax import nnx

    from eigenkit import train
    from eigenkit.methods import eigentrajectory as et
    from experiments.eigentrajectory import train as ett

    devices = jax.devices()[:n_devices]
    if len(devices) != n_devices:
        raise SystemExit(f"asked for {n_devices} devices, JAX has {jax.device_count()} ({jax.devices()})")
    config = config_for(shared["data_dir"])
    info = shared["info"]
    mesh = train.make_mesh(devices)
    batch = train.shard_batch(shared["batch"], mesh)
    key = jax.random.key(0)
    rows, arrays, runs = {}, {}, {}
    for space in SPACES:
        model = ett.build_model(config, space, shared["constants"], seed=0)
        state = train.TrainState.create(model, ett.optimizer(config, 1000), mesh=mesh)
        loss_fn = ett.et_loss_fn if space == "et" else ett.euclidean_loss_fn
        step = train.make_train_step(loss_fn, mesh=mesh, donate=False)
        t0 = time.perf_counter()
        compiled = step.lower(state, batch, key).compile()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        s1, m = compiled(state, batch, key)
        jax.block_until_ready(s1)
        first_call = time.perf_counter() - t0
        holder = {"s": state}

        def train_call(compiled=compiled, holder=holder):
            holder["s"], _ = compiled(holder["s"], batch, key)
            jax.block_until_ready(holder["s"])  # one step at a time: the fake-device all-reduce deadlock

        tr, train_window = _timed(train_call, repeats, steps)
        graphdef, to = state.graphdef, model.obs_len

        def forecasts(params, rest, traj, mask, graphdef=graphdef, to=to):
            return et.scene_forecasts(nnx.merge(graphdef, params, rest), traj[:, :, :to], mask)

        t0 = time.perf_counter()
        infer = jax.jit(forecasts).lower(state.params, state.rest, batch["traj"], batch["mask"]).compile()
        infer_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        fut = jax.block_until_ready(infer(state.params, state.rest, batch["traj"], batch["mask"]))
        infer_first = time.perf_counter() - t0

        def infer_call(infer=infer, state=state):
            jax.block_until_ready(infer(state.params, state.rest, batch["traj"], batch["mask"]))

        inf, infer_window = _timed(infer_call, repeats, steps)
        n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
        rows[space] = {
            "params": n_params,
            "train": _rates({"compile_s": compile_s, "first_call_s": first_call, **tr}, info)
            | {"first_loss": float(m["loss"]), "first_grad_norm": float(m["grad_norm"])},
            "inference": _rates({"compile_s": infer_compile, "first_call_s": infer_first, **inf}, info),
        }
        arrays[f"{space}_futures"] = np.asarray(fut)
        arrays[f"{space}_params_after_step"] = np.concatenate(
            [np.asarray(x).ravel() for x in jax.tree.leaves(jax.device_get(s1.params))])
        arrays[f"{space}_loss_grad_norm"] = np.array([float(m["loss"]), float(m["grad_norm"])])
        runs[f"{space}_train"], runs[f"{space}_inference"] = train_window, infer_window
    if ab_rounds > 0:
        rows["interleaved_ab"] = interleaved_ab(runs, ab_rounds, [("euclidean_train", "et_train"),
                                                                  ("euclidean_inference", "et_inference")])
        rows["interleaved_ab"]["window_calls"] = steps
    rows["parallelism"] = {k: measured_parallelism(f, 1) for k, f in runs.items()}
    rows["devices"] = n_devices
    return rows, arrays, runs


def compare_devices(one: dict, many: dict) -> dict:
    """Max differences between the 1-device and n-device runs; raises ``SystemExit`` when one is off."""
    out, failed = {}, []
    for space in SPACES:
        l1, g1 = one[f"{space}_loss_grad_norm"]
        ln, gn = many[f"{space}_loss_grad_norm"]
        f1, fn = one[f"{space}_futures"], many[f"{space}_futures"]
        d = {"first_loss_rel_diff": abs(l1 - ln) / max(abs(l1), 1e-12),
             "first_grad_norm_rel_diff": abs(g1 - gn) / max(abs(g1), 1e-12),
             "futures_max_abs_diff_m": float(np.abs(f1 - fn).max()),
             "futures_ok": bool(np.allclose(fn, f1, atol=FUT_ATOL, rtol=FUT_RTOL)),
             "params_after_step_max_abs_diff": float(np.abs(one[f"{space}_params_after_step"]
                                                            - many[f"{space}_params_after_step"]).max())}
        out[space] = d
        if not (d["first_loss_rel_diff"] <= DEVICE_LOSS_RTOL and d["first_grad_norm_rel_diff"] <= DEVICE_GRAD_NORM_RTOL
                and d["futures_ok"] and d["params_after_step_max_abs_diff"] <= DEVICE_PARAM_ATOL):
            failed.append(space)
    out["tolerances"] = {"loss_rtol": DEVICE_LOSS_RTOL, "grad_norm_rtol": DEVICE_GRAD_NORM_RTOL,
                         "futures_atol_m": FUT_ATOL, "futures_rtol": FUT_RTOL, "params_atol": DEVICE_PARAM_ATOL}
    if failed:
        raise SystemExit(f"1 vs n devices correctness check failed for {failed}: {out}")
    return out


def child_command(args, n: int, shared_path: str, out: str) -> tuple[list[str], dict]:
    """The command line and environment of the ``--devices n`` child (``XLA_FLAGS`` set there only)."""
    cmd = [sys.executable, "-m", "experiments.benchmarks.eigentrajectory", "--devices", str(n),
           "--child-input", shared_path, "--out", out, "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--steps", str(args.steps), "--ab-rounds", str(args.ab_rounds),
           "--scenes-per-batch", str(args.scenes_per_batch), "--bucket", str(args.bucket)]
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
    env["JAX_PLATFORMS"] = "cpu"  # the fake devices are host (CPU) devices
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return cmd, env


def run_child(args, shared: dict, n: int) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory(prefix="bench_et_") as tmp:
        shared_path = os.path.join(tmp, "shared.pkl")
        with open(shared_path, "wb") as f:
            pickle.dump(shared, f)
        out = os.path.join(tmp, "child.json")
        cmd, env = child_command(args, n, shared_path, out)
        p = subprocess.run(cmd, env=env, cwd=str(REPO), stdout=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit(f"the {n}-device child failed (rc {p.returncode}); stdout tail:\n{p.stdout[-3000:]}")
        import json

        row = json.loads(pathlib.Path(out).read_text())
        with np.load(pathlib.Path(out).with_suffix(".npz")) as z:
            arrays = {k: z[k] for k in z.files}
    return row, arrays


# ------------------------------------------------------------------------------------------------- baseline


def stub_weights(k: int, s: int, seed: int = 0) -> np.ndarray:
    """The official-layout stub ``W`` (``k·S × (k+2)``, rows ``i·S + s``; the fixture script's)."""
    return np.random.default_rng(seed).normal(0, 0.1, (k * s, k + 2)).astype(np.float32)


def to_ours_layout(w: np.ndarray, k: int, s: int) -> np.ndarray:
    """Official rows ``i·S + s`` (``C_pred[i, n, s]``) to ours ``s·k + i`` (``residual[n, s, i]``); also maps
    ``∂/∂W`` the same way (a row permutation)."""
    return w.reshape(k, s, -1).transpose(1, 0, 2).reshape(k * s, -1)


def to_official_layout(w: np.ndarray, k: int, s: int) -> np.ndarray:
    return w.reshape(s, k, -1).transpose(1, 0, 2).reshape(k * s, -1)


def make_linear_stub():
    """:class:`LinearStub`, built lazily (flax imported inside)."""
    import jax.numpy as jnp
    from flax import nnx

    class LinearStub(nnx.Module):
        """The stub backbone: ``y = x Wᵀ`` per agent (no interaction), of the backbone contract
        ``backbone(x (n, k+2), pos, mask) -> (n, S·k)``."""

        def __init__(self, w: np.ndarray):
            self.w = nnx.Param(jnp.asarray(w, jnp.float32))

        def __call__(self, x, pos, mask=None):
            del pos, mask
            return x @ self.w[...].T

    return LinearStub


def official_model(src: pathlib.Path, data: dict, k: int, s: int, static_dist: float):
    """The official ``EigenTrajectory`` with its own fitted descriptor and anchors (``init_descriptor``) and our
    ``(ETDescriptor, ETAnchors)`` holding the same constants."""
    import torch

    from eigenkit.methods import eigentrajectory as et
    from experiments.eigentrajectory.make_parity_fixtures import OBS_LEN, PRED_LEN, import_official

    pkg, _, _, utils = import_official(src)
    hp = utils.DotDict(obs_len=OBS_LEN, pred_len=PRED_LEN, obs_svd=True, pred_svd=True, k=k, num_samples=s,
                       traj_dim=2, static_dist=static_dist)
    model = pkg.EigenTrajectory(baseline_model=None, hook_func=None, hyper_params=hp)
    obs = torch.from_numpy(np.concatenate([data["train"].obs, data["val"].obs]).astype(np.float32))
    pred = torch.from_numpy(np.concatenate([data["train"].pred, data["val"].pred]).astype(np.float32))
    obs, pred = utils.augment_trajectory(obs, pred)
    t0 = time.perf_counter()
    model.calculate_parameters(obs, pred)
    fit_s = time.perf_counter() - t0
    mask = (obs[:, -1] - obs[:, -3]).div(2).norm(p=2, dim=-1) > static_dist
    basis = {}
    for name, desc, sel in (("moving", model.ET_m_descriptor, mask), ("static", model.ET_s_descriptor, ~mask)):
        o_n, p_n = desc.normalize_trajectory(obs[sel], pred[sel])
        basis[name] = et.ETBasis(desc.U_obs_trunc.detach().numpy(), desc.U_pred_trunc.detach().numpy(),
                                 desc.truncated_SVD(o_n)[1].numpy(), desc.truncated_SVD(p_n)[1].numpy())
    ours = (et.ETDescriptor(basis["moving"], basis["static"], static_dist),
            et.ETAnchors(model.ET_m_anchor.C_anchor.detach().numpy().T, model.ET_s_anchor.C_anchor.detach().numpy().T))
    return model, ours, fit_s


def run_baseline(args, shared: dict, data: dict) -> dict:
    import jax
    import torch
    from flax import nnx

    from eigenkit import train
    from eigenkit.methods import eigentrajectory as et
    from experiments.eigentrajectory import train as ett
    from experiments.eigentrajectory.make_parity_fixtures import official_commit

    torch.set_num_threads(args.threads)
    src = args.official_src.resolve()
    config = config_for(shared["data_dir"])
    k, s = int(config.k), int(config.num_samples)
    info = shared["info"]
    model, (desc, anchors), fit_s = official_model(src, data, k, s, float(info["static_dist"]))
    w_off = stub_weights(k, s)

    # official side: the fixture script's stub hook, W a trainable leaf; the sequenced trainer's loop
    w_t = torch.nn.Parameter(torch.from_numpy(w_off.copy()))
    model.hook_func = types.SimpleNamespace(
        model_forward_pre_hook=lambda c_obs, obs_ori, addl_info: torch.cat([c_obs, obs_ori], dim=0),
        model_forward=lambda x, baseline: w_t @ x,
        model_forward_post_hook=lambda y, addl_info: y.reshape(k, s, -1).permute(0, 2, 1))
    params = list(model.parameters()) + [w_t]
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    traj, mask = shared["batch"]["traj"], shared["batch"]["mask"]
    to = int(config.obs_len)
    scenes_t = [(torch.from_numpy(traj[b][mask[b]][:, :to].copy()), torch.from_numpy(traj[b][mask[b]][:, to:].copy()))
                for b in range(len(traj))]

    def official_loss():
        total = None
        recon = []
        for o, p in scenes_t:
            out = model(o, p)
            loss = out["loss_eigentraj"] + out["loss_euclidean_ade"] + out["loss_euclidean_fde"]
            loss[torch.isnan(loss)] = 0
            total = loss if total is None else total + loss
            recon.append(out["recon_traj"])
        return total / len(scenes_t), recon

    def official_train():
        model.train()
        opt.zero_grad()
        total, _ = official_loss()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, config.clip_grad)
        opt.step()
        return total

    def official_infer():
        model.eval()
        with torch.no_grad():
            return [model(o)["recon_traj"] for o, _ in scenes_t]

    # ours: the same constants and stub weights in our ETForecaster, the padded batch vmapped
    stub_cls = make_linear_stub()
    w_ours = to_ours_layout(w_off, k, s)

    def make_stub(fin, fout, rngs):
        del rngs
        if (fout, fin) != w_ours.shape:
            raise ValueError(f"stub backbone: expected ({w_ours.shape[1]} -> {w_ours.shape[0]}), got {fin} -> {fout}")
        return stub_cls(w_ours)

    mesh = train.make_mesh(jax.devices()[:1])
    ours_model = et.ETForecaster(desc, anchors, make_stub, rngs=nnx.Rngs(0))
    state = train.TrainState.create(ours_model, ett.optimizer(config, 1000), mesh=mesh)
    batch = train.shard_batch(shared["batch"], mesh)
    key = jax.random.key(0)
    graphdef = state.graphdef

    def loss_of(p):
        return ett.et_loss_fn(nnx.merge(graphdef, p, state.rest), batch, key)[0]

    def forecasts(p, rest, traj_, mask_):
        return et.scene_forecasts(nnx.merge(graphdef, p, rest), traj_[:, :, :to], mask_)

    # correctness first
    model.train()
    opt.zero_grad()
    off_loss, off_recon = official_loss()
    off_loss.backward()
    off_grad = w_t.grad.detach().numpy().copy()
    off_loss = float(off_loss.detach())
    opt.zero_grad()
    off_recon = [r.detach().numpy() for r in off_recon]
    ours_loss, ours_grads = jax.jit(jax.value_and_grad(loss_of))(state.params)
    grad_leaves = jax.tree.leaves(ours_grads)
    if len(grad_leaves) != 1:
        raise SystemExit(f"the stub model should have one parameter (W), got {len(grad_leaves)}")
    ours_grad = to_official_layout(np.asarray(grad_leaves[0]), k, s)
    infer = jax.jit(forecasts).lower(state.params, state.rest, batch["traj"], batch["mask"]).compile()
    fut = np.asarray(infer(state.params, state.rest, batch["traj"], batch["mask"]))
    fut_diff, fut_ok = 0.0, True
    for b, r in enumerate(off_recon):
        ours_b = np.moveaxis(fut[b][mask[b]], 1, 0)  # (S, n, T_p, 2), the official layout
        fut_diff = max(fut_diff, float(np.abs(ours_b - r).max()))
        fut_ok &= bool(np.allclose(ours_b, r, atol=FUT_ATOL, rtol=FUT_RTOL))
    loss_rel = abs(float(ours_loss) - off_loss) / max(abs(off_loss), 1e-12)
    grad_rel = float(np.abs(ours_grad - off_grad).max()) / max(float(np.abs(off_grad).max()), 1e-12)
    correctness = {"futures_max_abs_diff_m": fut_diff, "futures_ok": fut_ok,
                   "futures_tolerance": {"atol_m": FUT_ATOL, "rtol": FUT_RTOL},
                   "batch_loss_official": off_loss, "batch_loss_ours": float(ours_loss),
                   "batch_loss_rel_diff": loss_rel, "grad_w_max_abs_diff_rel_to_max": grad_rel,
                   "grad_w_max_abs": float(np.abs(off_grad).max())}
    if not (fut_ok and loss_rel <= BASE_LOSS_RTOL and grad_rel <= BASE_GRAD_RTOL):
        raise SystemExit(f"official vs ours correctness check failed: {correctness}")

    # timing
    step = train.make_train_step(ett.et_loss_fn, mesh=mesh, donate=False)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, key).compile()
    compile_s = time.perf_counter() - t0
    holder = {"s": state}

    def ours_train():
        holder["s"], _ = compiled(holder["s"], batch, key)
        jax.block_until_ready(holder["s"])

    def ours_infer():
        jax.block_until_ready(infer(state.params, state.rest, batch["traj"], batch["mask"]))

    runs = {"official_train": official_train, "ours_train": ours_train,
            "official_inference": official_infer, "ours_inference": ours_infer}
    rows = {}
    for name, fn in runs.items():
        first, med = first_and_median(fn, args.repeats)
        rows[name] = _rates({"first_call_s": first, "call_s": med}, info)
    rows["ours_train"]["compile_s"] = compile_s
    speedup = {f"speedup_{w}": rows[f"ours_{w}"]["scenes_per_s"] / rows[f"official_{w}"]["scenes_per_s"]
               for w in ("train", "inference")}
    ab = None
    if args.ab_rounds > 0:
        ab = interleaved_ab(runs, args.ab_rounds, [("official_train", "ours_train"),
                                                    ("official_inference", "ours_inference")])
    threads = {"torch_get_num_threads": torch.get_num_threads(),
               "parallelism": {k_: measured_parallelism(f, 1) for k_, f in runs.items()}}
    if threads["torch_get_num_threads"] != args.threads:
        raise SystemExit(f"torch uses {torch.get_num_threads()} threads, asked {args.threads}")
    return {"official": {"src": str(src), "commit": official_commit(src), "torch": torch.__version__,
                         "fit_constants_s": fit_s, "constants": "official calculate_parameters (k-means n_init 10) "
                         "on eth train + val with augment_trajectory; loaded into our ETDescriptor / ETAnchors"},
            "backbone": f"stub: fixed linear map W (k*S x (k+2)) = ({k * s} x {k + 2}) per agent, same W both sides",
            "official_style": "ETSequencedMiniBatchTrainer: one scene (real agents only) per forward, loss sum / "
                              "batch, one backward, clip_grad_norm_ 10, AdamW step; inference: no_grad loop",
            "ours_style": "padded batch, vmap over scenes, make_train_step (AdamW + clip 10), 1 device; "
                          "jit(scene_forecasts)",
            "correctness": correctness, "rows": rows, **speedup, "interleaved_ab": ab, "threads": threads}


# ------------------------------------------------------------------------------------------------- main


def build_parser():
    """The command line (``_common.parser`` plus data, batch, baseline and device options)."""
    import argparse

    ap = parser(__doc__, out="experiments/benchmarks/results/eigentrajectory.json")
    ap.add_argument("--official-src", type=pathlib.Path, default=None,
                    help="root of InhwanBae/EigenTrajectory (holds EigenTrajectory/ and utils/); without it the "
                         "baseline section is skipped")
    ap.add_argument("--data-dir", default=None,
                    help="ETH/UCY root <root>/<scene>/<split>/*.txt (default $EIGENKIT_ETHUCY, else "
                         "../shared/data/ethucy when it exists, else the synthetic crowd)")
    ap.add_argument("--scenes-per-batch", type=int, default=64, help="padded scenes per batch (a multiple of 8)")
    ap.add_argument("--bucket", type=int, default=16, help="agent slots per scene (a bucket of the cpu preset)")
    ap.add_argument("--steps", type=int, default=10, help="calls per timed window (each waited for)")
    ap.add_argument("--multi-devices", type=int, default=MULTI_DEVICES,
                    help=f"fake CPU devices of the child measurement (default {MULTI_DEVICES}; 0 or 1: skip it)")
    ap.add_argument("--devices", type=int, default=None,
                    help="child mode: measure only our full model on this many devices (the parent passes it with "
                         "XLA_FLAGS=--xla_force_host_platform_device_count=N) and write JSON + .npz to --out")
    ap.add_argument("--child-input", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)  # before JAX's backend starts: XLA sizes its pool from the affinity
    n_multi = args.devices or args.multi_devices
    if args.scenes_per_batch < 1 or (n_multi > 1 and args.scenes_per_batch % n_multi):
        raise SystemExit(f"--scenes-per-batch ({args.scenes_per_batch}) must be a positive multiple of {n_multi}")
    if args.bucket < 1 or args.steps < 1:
        raise SystemExit("--bucket and --steps must be positive")
    argv_list = argv if argv is not None else sys.argv[1:]

    if args.devices is not None:  # child mode
        load_before = check_load("before")
        if args.child_input:
            with open(args.child_input, "rb") as f:
                shared = pickle.load(f)
        else:
            shared, _ = prepare(args)
        rows, arrays, _ = bench_ours(shared, args.devices, args.repeats, args.steps, args.ab_rounds)
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out.with_suffix(".npz"), **arrays)
        write_result({"benchmark": "eigentrajectory_child", "rows": rows, "threads": threads,
                      "loadavg_before": load_before, "loadavg_after": check_load("after")}, out)
        return 0

    import jax

    machine_before = machine_info()
    load_before = check_load("before")
    shared, data = prepare(args)
    one, one_arrays, _ = bench_ours(shared, 1, args.repeats, args.steps, args.ab_rounds)
    ours = {"one_device": one}
    correctness_devices, child_threads = None, None
    if args.multi_devices > 1:
        child, many_arrays = run_child(args, shared, args.multi_devices)
        many = child["rows"]
        correctness_devices = compare_devices(one_arrays, many_arrays)
        ours[f"{args.multi_devices}_devices"] = many
        child_threads = child["threads"]
        for space in SPACES:
            for w in ("train", "inference"):
                ours[f"ratio_{space}_{w}_time_ndev_over_1dev"] = many[space][w]["call_s"] / one[space][w]["call_s"]
                ours[f"ratio_{space}_{w}_compile_ndev_over_1dev"] = (many[space][w]["compile_s"]
                                                                     / one[space][w]["compile_s"])
    if args.official_src is not None:
        baseline = run_baseline(args, shared, data)
    else:
        baseline = {"skipped": "no --official-src: the official InhwanBae/EigenTrajectory comparison did not run"}
    result = {
        "benchmark": "eigentrajectory_scenes_per_s",
        "what": "scenes/s and agents/s of a train step and of 20-mode inference: ours (full model, ET space and "
                "Euclidean twin) on 1 vs n fake devices; ours vs the official wrapper with the same stub backbone",
        "data": shared["info"], "dtype": "float32 (both sides)",
        "baseline_used": ("official InhwanBae/EigenTrajectory (PyTorch) with a stub linear backbone"
                          if args.official_src is not None else "none (no --official-src)"),
        "ours_full": ours, "correctness_devices": correctness_devices, "baseline": baseline,
        "threads": {"parent": threads, "child": child_threads},
        "platform": jax.devices()[0].platform, "jax": jax.__version__, "cpu_count": os.cpu_count(),
        "repeats": args.repeats, "steps_per_window": args.steps,
        "loadavg_before": load_before, "loadavg_after": check_load("after"), "machine_before": machine_before,
        "command": "python -m experiments.benchmarks.eigentrajectory " + " ".join(argv_list),
        "python": sys.version.split()[0],
    }
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
