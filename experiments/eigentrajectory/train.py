"""Best-of-20 ADE / FDE table: the same interaction backbone (a masked social transformer) in ET space (the paper)
and in Euclidean space (its twin), per ETH/UCY leave-one-scene-out split — or on the synthetic social-force crowd
when no ETH/UCY copy is given (every output then says "synthetic").

Per scene, space and seed (official ``utils/trainer.py`` protocol where it applies):

1. ET descriptor and anchors from the **train + val** windows with the y-flip copy (``fit_descriptor``,
   ``fit_anchors``; k-means ``n_init`` from ``config.kmeans_n_init``, official 10);
2. training on the train windows, one padded scene per row, mean over the real scenes of a batch of per-scene
   losses (official: per-scene losses summed over 128 scenes, divided by 128); AdamW (lr 1e-3, wd 1e-4), global
   gradient-norm clip 10, learning rate halved every ``config.lr_step_every`` steps (official StepLR every 64 of 256
   epochs);
3. model selection by the agent-weighted validation FDE (official ``valid``), test ADE / FDE (metres, best of 20, mean
   over agents) at the selected evaluation.

Scenes are padded into agent-count buckets (``config.buckets``) with ``config.agent_slots`` agent slots per batch
(so a batch of small scenes holds more scenes), which keeps one compiled step per bucket and the padding small.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import train
from eigenkit.data import ETHUCY_SCENES, TrajectoryWindows, ethucy, pad_windows
from eigenkit.methods import eigentrajectory as et
from eigenkit.metrics import best_of_ade_fde, collision_rate, temporal_correlation
from experiments._contract import Result, SeedSweep, markdown_table

#: Per-scene moving / static thresholds (official ``config/eigentrajectory-*-{scene}.json`` ``static_dist``).
STATIC_DIST = {"eth": 0.419, "hotel": 0.353, "univ": 0.227, "zara1": 0.338, "zara2": 0.350}
SYNTHETIC = "synthetic"
SYNTHETIC_STATIC_DIST = 0.1  # m per step: the generator's standing agents move < 0.05 m per step
#: Published EigenTrajectory best-of-20 ADE / FDE (m), the best ET variant (ET + LB-EBM; ../shared/methods notes §4).
PAPER = {"eth": (0.36, 0.53), "hotel": (0.12, 0.19), "univ": (0.24, 0.43), "zara1": (0.19, 0.33),
         "zara2": (0.14, 0.24), "average": (0.21, 0.34)}
#: ``et`` the paper's model; ``euclidean`` its twin (same backbone, raw coordinates); ``et_noanchor`` an ablation:
#: ET space with all anchors at 0 (the backbone predicts the coefficients themselves), isolating the anchors.
SPACES = ("et", "euclidean", "et_noanchor")
OURS = "et"


# ---------------------------------------------------------------- data


def data_source(config) -> tuple[str, str | None]:
    """``("ethucy", root)`` or ``("synthetic", None)`` from ``config.dataset`` ("auto", "ethucy", "synthetic") and
    ``config.data_dir`` / ``$EIGENKIT_ETHUCY``. "auto" uses ETH/UCY when a folder is given and exists."""
    name = str(config.get("dataset", "auto"))
    if name not in ("auto", "ethucy", SYNTHETIC):
        raise ValueError(f"config.dataset must be 'auto', 'ethucy' or 'synthetic', got {name!r}")
    root = config.get("data_dir", "") or os.environ.get("EIGENKIT_ETHUCY", "")
    if name == SYNTHETIC:
        return SYNTHETIC, None
    if name == "ethucy" or (root and pathlib.Path(root).is_dir()):
        return "ethucy", root or None  # ethucy() raises MissingDataError naming what to provide
    print("eigentrajectory: no ETH/UCY folder (config.data_dir / $EIGENKIT_ETHUCY); using the SYNTHETIC "
          "social-force crowd", flush=True)
    return SYNTHETIC, None


def scenes(config) -> tuple[str, ...]:
    source, _ = data_source(config)
    if source == SYNTHETIC:
        return (SYNTHETIC,)
    out = tuple(config.scenes)
    bad = [s for s in out if s not in ETHUCY_SCENES]
    if bad:
        raise ValueError(f"config.scenes: unknown scenes {bad}; ETH/UCY has {ETHUCY_SCENES}")
    return out


def load_scene(config, scene: str) -> dict[str, TrajectoryWindows]:
    """The train / val / test windows of one leave-one-scene-out split (or of the synthetic crowd)."""
    source, root = data_source(config)
    kw = dict(obs_len=config.obs_len, pred_len=config.pred_len)
    if source == SYNTHETIC:
        from eigenkit.data import social_force_crowd

        sizes = dict(num_recordings=config.synthetic_recordings, agents=config.synthetic_agents,
                     frames=config.synthetic_frames, seed=config.get("data_seed", 0))
        return {s: social_force_crowd(s, **sizes, **kw) for s in ("train", "val", "test")}
    return {s: ethucy(scene, s, root=root, **kw) for s in ("train", "val", "test")}


def static_dist(config, scene: str) -> float:
    if config.get("static_dist", 0.0):
        return float(config.static_dist)
    return SYNTHETIC_STATIC_DIST if scene == SYNTHETIC else STATIC_DIST[scene]


class Buckets:
    """Windows padded per agent-count bucket: ``groups[b] = (positions (W_b, N_b, T, 2) float32, mask (W_b, N_b))``
    with ``N_b`` the bucket size and ``batch[b] = agent_slots // N_b`` scenes per batch (a multiple of the device
    count). Windows larger than the largest bucket raise ValueError."""

    def __init__(self, windows: TrajectoryWindows, buckets, agent_slots: int, n_dev: int):
        counts = windows.agents_per_window
        sizes = sorted(int(b) for b in buckets)
        if counts.size == 0:
            raise ValueError("the split has no window (an empty scene list)")
        if counts.max() > sizes[-1]:
            raise ValueError(f"config.buckets: the largest bucket ({sizes[-1]}) is smaller than the largest window "
                             f"({int(counts.max())} agents); add a bucket")
        which = np.searchsorted(sizes, counts)  # first bucket >= count
        positions, mask = pad_windows(windows, sizes[-1], dtype=np.float32)
        self.groups, self.batch = {}, {}
        for b, size in enumerate(sizes):
            idx = np.flatnonzero(which == b)
            if idx.size == 0:
                continue
            self.groups[size] = (positions[idx, :size], mask[idx, :size])
            self.batch[size] = max(n_dev, (max(1, agent_slots // size) // n_dev) * n_dev)
        self.num_agents = int(counts.sum())

    def epoch_plan(self, seed: int, epoch: int) -> list[tuple[int, np.ndarray]]:
        """``[(bucket, window indices)]`` of one epoch: shuffled within buckets, cut into batches (the last one
        short), batch order shuffled — a pure function of ``(seed, epoch)``."""
        rng = np.random.default_rng([seed, epoch])
        plan = []
        for size, (pos, _) in self.groups.items():
            perm = rng.permutation(len(pos))
            bs = self.batch[size]
            plan += [(size, perm[i:i + bs]) for i in range(0, len(perm), bs)]
        order = rng.permutation(len(plan))
        return [plan[i] for i in order]

    @property
    def batches_per_epoch(self) -> int:
        return sum(-(-len(p) // self.batch[s]) for s, (p, _) in self.groups.items())

    def take(self, size: int, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The batch of windows ``idx`` of bucket ``size``, filled to the bucket's batch size with empty scenes."""
        pos, mask = self.groups[size]
        bs = self.batch[size]
        p, m = pos[idx], mask[idx]
        if len(idx) < bs:
            p = np.concatenate([p, np.zeros((bs - len(idx),) + p.shape[1:], p.dtype)])
            m = np.concatenate([m, np.zeros((bs - len(idx),) + m.shape[1:], bool)])
        return {"traj": p, "mask": m}

    def eval_batches(self):
        for size, (pos, _) in self.groups.items():
            bs = self.batch[size]
            for i in range(0, len(pos), bs):
                idx = np.arange(i, min(i + bs, len(pos)))
                yield self.take(size, idx)


# ---------------------------------------------------------------- model and losses


def make_backbone_factory(config):
    def make(in_features: int, out_features: int, rngs: nnx.Rngs):
        return et.SocialTransformer(in_features, out_features, hidden=config.hidden, heads=config.heads,
                                    layers=config.layers, mlp_ratio=config.mlp_ratio, rngs=rngs)

    return make


def build_model(config, space: str, constants, seed: int):
    make = make_backbone_factory(config)
    if space in ("et", "et_noanchor"):
        descriptor, anchors = constants
        if space == "et_noanchor":
            anchors = et.ETAnchors(np.zeros_like(anchors.moving), np.zeros_like(anchors.static))
        return et.ETForecaster(descriptor, anchors, make, rngs=nnx.Rngs(seed))
    if space == "euclidean":
        return et.EuclideanForecaster(float(constants[0].static_dist), make, num_samples=config.num_samples,
                                      obs_len=config.obs_len, pred_len=config.pred_len, rngs=nnx.Rngs(seed))
    raise ValueError(f"config.spaces entries must be in {SPACES}, got {space!r}")


def _scene_weights(mask: jax.Array) -> jax.Array:
    real = jnp.any(mask, axis=-1).astype(jnp.float32)
    return real / jnp.maximum(jnp.sum(real), jnp.ones((), jnp.float32))


def et_loss_fn(model, batch, key):
    """The ET-space loss ``L_ET + L_ADE + L_FDE`` per scene, averaged over the real scenes of the batch."""
    del key
    traj, mask = batch["traj"], batch["mask"]
    to = model.obs_len
    obs, gt = traj[:, :, :to], traj[:, :, to:]

    def one(o, y, m):
        futures, c = model(o, m)
        _, c_gt, _, _ = et.et_project(o, model.descriptor(), y)
        return et.eigentrajectory_loss(c, c_gt, futures, y, m)

    loss, parts = jax.vmap(one)(obs, gt, mask)
    w = _scene_weights(mask)
    return jnp.sum(w * loss), {k: jnp.sum(w * v) for k, v in parts.items()}


def euclidean_loss_fn(model, batch, key):
    del key
    traj, mask = batch["traj"], batch["mask"]
    to = model.obs_len
    loss, parts = jax.vmap(lambda o, y, m: et.euclidean_loss(model(o, m), y, m))(traj[:, :, :to], traj[:, :, to:],
                                                                                 mask)
    w = _scene_weights(mask)
    return jnp.sum(w * loss), {k: jnp.sum(w * v) for k, v in parts.items()}


def metric_fn(model, batch):
    """Sums over the real agents of the batch: best-of-S ADE and FDE (metres) and the agent count."""
    traj, mask = batch["traj"], batch["mask"]
    to = model.obs_len
    futures = et.scene_forecasts(model, traj[:, :, :to], mask)
    gt = traj[:, :, to:]
    ade, fde = best_of_ade_fde(futures, gt)
    tcc = temporal_correlation(futures, gt, mask)
    col = jax.vmap(lambda f, m: collision_rate(f, m))(futures, mask)
    zero = jnp.zeros((), ade.dtype)
    return {name: jnp.sum(jnp.where(mask, v.astype(ade.dtype), zero)) for name, v in
            (("ade", ade), ("fde", fde), ("tcc", tcc), ("col", col))} | {"count": jnp.sum(mask.astype(ade.dtype))}


def optimizer(config, num_steps: int) -> optax.GradientTransformation:
    """AdamW + global-norm clip + StepLR (official ``set_optimizer_scheduler``; step counted in optimiser steps)."""
    every = int(config.get("lr_step_every", 0)) or max(1, num_steps // 4)
    schedule = optax.exponential_decay(config.learning_rate, transition_steps=every, decay_rate=config.lr_gamma,
                                       staircase=True)
    return optax.chain(optax.clip_by_global_norm(config.clip_grad),
                       optax.adamw(schedule, weight_decay=config.weight_decay))


_STEPS: dict = {}


def _steps(space: str, mesh):
    if space not in _STEPS:
        loss = euclidean_loss_fn if space == "euclidean" else et_loss_fn
        _STEPS[space] = (train.make_train_step(loss, mesh=mesh), train.make_eval_step(metric_fn, mesh=mesh))
    return _STEPS[space]


def evaluate(state, eval_step, buckets: Buckets, mesh) -> dict[str, float]:
    sums = [eval_step(state, train.shard_batch(b, mesh)) for b in buckets.eval_batches()]
    return train.accumulate(sums)


# ---------------------------------------------------------------- descriptor study

KS = (1, 2, 3, 4, 6, 8, 12)


def descriptor_errors(windows: TrajectoryWindows, ks=KS) -> np.ndarray:
    """``(len(ks), 2)`` mean L2 reconstruction error (m) of the observed and future parts at rank ``k``
    (official ``script/descriptor_evaluation.py``, SVD branch: the split's own float64 SVD after origin + rotation
    normalisation of the float32 data)."""
    obs = windows.obs.astype(np.float32).astype(np.float64)
    pred = windows.pred.astype(np.float32).astype(np.float64)
    params = et.traj_norm_params(obs, scale=False)
    out = []
    for part in (obs, pred):
        norm = np.asarray(et.normalize(part, params))
        u, _ = et.truncated_svd(norm, 2 * part.shape[1])
        row = []
        for k in ks:
            rec = et.denormalize(et.reconstruct(et.project(norm, u[:, :k]), u[:, :k]), params)
            row.append(float(np.linalg.norm(np.asarray(rec) - part, axis=-1).mean()))
        out.append(row)
    return np.array(out).T


def plot_descriptor(errors: dict[str, np.ndarray], path: pathlib.Path, label: str, ks=KS) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for scene, err in errors.items():
        for ax, col in zip(axes, (0, 1), strict=True):
            ax.plot(ks, err[:, col], "o-", label=scene)
    for ax, part in zip(axes, ("observed (8 steps)", "future (12 steps)"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("descriptor rank k")
        ax.set_ylabel("mean L2 reconstruction error (m)")
        ax.set_title(part)
        ax.axvline(6, color="grey", lw=0.5)
    axes[0].legend()
    fig.suptitle(f"{label}: ET descriptor reconstruction error vs k (test split, its own SVD)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- runs


def fit_constants(config, data: dict[str, TrajectoryWindows], scene: str):
    """ET descriptor + anchors from train + val with the y-flip copy (official ``init_descriptor``)."""
    obs = np.concatenate([data["train"].obs, data["val"].obs])
    pred = np.concatenate([data["train"].pred, data["val"].pred])
    desc = et.fit_descriptor(obs, pred, static_dist=static_dist(config, scene), k=config.k)
    anchors = et.fit_anchors(obs, pred, desc, num_anchors=config.num_samples, n_init=config.kmeans_n_init)
    return desc, anchors


def run_one(config, scene: str, space: str, seed: int, constants, buckets: dict[str, Buckets], mesh,
            workdir: pathlib.Path, plot: dict | None = None) -> dict[str, float]:
    """One scene, space and seed; ``plot`` (a dict) receives the final state under ``space``."""
    tr = buckets["train"]
    num_steps = int(config.num_steps)
    model = build_model(config, space, constants, seed)
    state = train.TrainState.create(model, optimizer(config, num_steps), mesh=mesh)
    step, eval_step = _steps(space, mesh)
    per_epoch = tr.batches_per_epoch

    plan: dict[int, list] = {}  # this epoch's plan only: computed once per epoch, not per step

    def batches(s: int):
        epoch, i = divmod(s, per_epoch)
        if epoch not in plan:
            plan.clear()
            plan[epoch] = tr.epoch_plan(seed, epoch)
        size, idx = plan[epoch][i]
        return tr.take(size, idx)

    run_dir = workdir / f"{scene}_{space}_seed{seed}"
    best = _best_logged(run_dir)

    def eval_fn(st):
        val = evaluate(st, eval_step, buckets["val"], mesh)
        test = evaluate(st, eval_step, buckets["test"], mesh)
        if val["fde"] < best["val_fde"]:
            best.update(val_fde=val["fde"], ade=test["ade"], fde=test["fde"], tcc=test["tcc"], col=test["col"])
        return {"val_ade": val["ade"], "val_fde": val["fde"]} | {f"test_{k}": v for k, v in test.items()}

    t0 = time.perf_counter()
    sub = train.subrun_config(config, drop=("scenes", "spaces", "seeds"), scene=scene, space=space, seed=seed)
    state, _ = train.fit(state, step, batches=batches, num_steps=num_steps, workdir=run_dir, config=sub, mesh=mesh,
                         seed=seed, eval_fn=eval_fn, eval_every=config.eval_every,
                         checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                         show_progress=config.show_progress, desc=f"eigentrajectory {scene} {space} seed {seed}")
    if plot is not None:
        plot[space] = state
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
    return {**best, "time_s": time.perf_counter() - t0, "params": float(n_params)}


def _best_logged(run_dir: pathlib.Path) -> dict[str, float]:
    """Test ADE / FDE at the best validation FDE among the eval records of an interrupted run's ``metrics.jsonl``."""
    best = {"val_fde": np.inf, "ade": np.nan, "fde": np.nan, "tcc": np.nan, "col": np.nan}
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "eval/val_fde" in rec and rec["eval/val_fde"] < best["val_fde"]:
                best = {"val_fde": float(rec["eval/val_fde"])} | {
                    k: float(rec.get(f"eval/test_{k}", np.nan)) for k in ("ade", "fde", "tcc", "col")}
    return best


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Per-scene test ADE / FDE of ET space vs the Euclidean twin; writes ``ade_fde_table.md`` / ``.json``."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = train.make_mesh()
    _STEPS.clear()
    source, _ = data_source(config)
    spaces = tuple(config.spaces)
    bad = [s for s in spaces if s not in SPACES]
    if bad:
        raise ValueError(f"config.spaces: unknown {bad}; choose from {SPACES}")
    if OURS not in spaces:
        raise ValueError(f"config.spaces must include {OURS!r} (the paper's model), got {spaces}")
    n_dev = mesh.devices.size
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    fits: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    recon: dict[str, np.ndarray] = {}
    for scene in scenes(config):
        data = load_scene(config, scene)
        recon[scene] = descriptor_errors(data["test"])
        t0 = time.perf_counter()
        constants = fit_constants(config, data, scene)
        fits[scene] = time.perf_counter() - t0
        buckets = {s: Buckets(w, config.buckets, config.agent_slots, n_dev) for s, w in data.items()}
        states: dict | None = {} if not artifacts else None  # the first scene's first seed is plotted
        for space in spaces:
            for seed in config.seeds:
                r = run_one(config, scene, space, seed, constants, buckets, mesh, workdir,
                            states if seed == config.seeds[0] else None)
                runs.setdefault(scene, {}).setdefault(space, []).append(r)
        if states is not None:
            artifacts["futures"] = str(plot_futures(states, data["test"], scene, source, workdir / "futures.png"))
    result = _report(config, runs, fits, source, workdir)
    label = "ETH/UCY" if source == "ethucy" else "SYNTHETIC crowd"
    artifacts["descriptor"] = str(plot_descriptor(recon, workdir / "descriptor.png", label))
    title = f"{label}: ET descriptor reconstruction error (m), observed / future, vs rank k (test split, own SVD)"
    table = markdown_table(["scene"] + [f"k={k}" for k in KS],
                           [[sc] + [f"{o:.4f} / {f:.4f}" for o, f in err] for sc, err in recon.items()])
    result.tables[title] = table
    result.extras["descriptor_errors"] = {sc: err.tolist() for sc, err in recon.items()}
    with open(workdir / "ade_fde_table.md", "a") as fh:
        fh.write("\n" + title + ".\n\n" + table + "\n")
    result.artifacts.update(artifacts)
    return result


def plot_futures(states: dict, windows: TrajectoryWindows, scene: str, source: str, path: pathlib.Path,
                 max_agents: int = 6) -> pathlib.Path:
    """A PNG of one test window (the busiest with at most ``max_agents`` agents): observed (black), true future
    (green), the 20 predicted futures (thin) per space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = windows.agents_per_window
    ok = np.flatnonzero(counts <= max_agents)
    w = int(ok[np.argmax(counts[ok])]) if ok.size else 0
    agents = windows.trajectories[windows.scene_starts[w]:windows.scene_starts[w + 1]].astype(np.float32)
    to = windows.obs_len
    fig, axes = plt.subplots(1, len(states), figsize=(5 * len(states), 5), squeeze=False)
    for ax, (space, state) in zip(axes[0], states.items(), strict=True):
        model = state.model()
        out = model(jnp.asarray(agents[:, :to]))
        futures = np.asarray(out[0] if isinstance(out, tuple) else out)
        ade, fde = (np.asarray(v) for v in best_of_ade_fde(jnp.asarray(futures), jnp.asarray(agents[:, to:])))
        for n, a in enumerate(agents):
            colour = f"C{n % 10}"
            for f in futures[n]:
                ax.plot(np.r_[a[to - 1, 0], f[:, 0]], np.r_[a[to - 1, 1], f[:, 1]], color=colour, lw=0.5, alpha=0.5)
            ax.plot(a[:to, 0], a[:to, 1], "k.-", lw=1.5)
            ax.plot(a[to - 1:, 0], a[to - 1:, 1], "g-", lw=2)
        ax.set_title(f"{space}: best-of-20 ADE {ade.mean():.2f} / FDE {fde.mean():.2f} m")
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
    label = "ETH/UCY" if source == "ethucy" else "SYNTHETIC crowd"
    fig.suptitle(f"{label} {scene} test window {w} (frame {windows.start_frame[w]:.0f}): observed (black), "
                 "truth (green), 20 futures per agent")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _report(config, runs, fits, source: str, workdir: pathlib.Path) -> Result:
    sweep = SeedSweep()
    label = "ETH/UCY" if source == "ethucy" else "SYNTHETIC social-force crowd"
    rows = []
    mean = {space: {"ade": [], "fde": []} for space in config.spaces}
    for scene, per_space in runs.items():
        row = [scene]
        for space in config.spaces:
            rs = per_space[space]
            ade, fde = np.array([r["ade"] for r in rs]), np.array([r["fde"] for r in rs])
            mean[space]["ade"].append(ade)
            mean[space]["fde"].append(fde)
            row.append(f"{ade.mean():.3f} / {fde.mean():.3f}")
        if source == "ethucy":
            row.append("{:.2f} / {:.2f}".format(*PAPER[scene]))
        rows.append(row)
    per_seed = {space: (np.mean(np.stack(v["ade"]), axis=0), np.mean(np.stack(v["fde"]), axis=0))
                for space, v in mean.items()}
    avg_row = ["average" if len(runs) > 1 else "(all)"]
    for space in config.spaces:
        a, f = per_seed[space]
        avg_row.append(f"**{a.mean():.3f} / {f.mean():.3f}**")
        for i, seed in enumerate(config.seeds):
            sweep.add(f"{space}_ade", float(a[i]), seed=seed, baseline=space != OURS, higher_is_better=False, unit="m")
            sweep.add(f"{space}_fde", float(f[i]), seed=seed, baseline=space != OURS, higher_is_better=False, unit="m")
    if source == "ethucy":
        avg_row.append("{:.2f} / {:.2f}".format(*PAPER["average"]) if len(runs) == 5 else "—")
    rows.append(avg_row)
    header = ["scene"] + [f"{s} ADE / FDE (m)" for s in config.spaces] + (
        ["paper ET (best variant)"] if source == "ethucy" else [])
    table = markdown_table(header, rows)
    title = (f"{label}: best-of-{config.num_samples} test ADE / FDE, masked social transformer "
             f"(hidden {config.hidden}, {config.layers} layers) in ET space (k = {config.k}, anchors) vs Euclidean "
             f"space, {config.num_steps} steps, seeds {list(config.seeds)}, selected by val FDE")
    other = markdown_table(["scene"] + [f"{s} TCC / COL (%)" for s in config.spaces], [
        [scene] + ["{:.3f} / {:.2f}".format(np.mean([r["tcc"] for r in per_space[s]]),
                                            np.mean([r["col"] for r in per_space[s]])) for s in config.spaces]
        for scene, per_space in runs.items()])
    other_title = (f"{label}: official TCC (best-FDE sample, higher is better) and collision rate COL (% of samples "
                   "within 0.2 m of another agent, lower is better) at the selected evaluation")
    (workdir / "ade_fde_table.md").write_text(title + ".\n\n" + table + "\n\n" + other_title + ".\n\n" + other + "\n")
    (workdir / "ade_fde_table.json").write_text(json.dumps({"config": config.to_dict(), "source": label,
                                                            "runs": runs, "fit_s": fits}, indent=2, default=str))
    print(title + "\n" + table, flush=True)
    extras = {"source": label, "fit_s": fits,
              "time_per_run_s": float(np.mean([r["time_s"] for p in runs.values() for rs in p.values() for r in rs]))}
    return Result(sweep.metrics(), extras=extras, tables={title: table, other_title: other},
                  artifacts={"table": str(workdir / "ade_fde_table.md")})

