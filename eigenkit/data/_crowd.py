"""A synthetic pedestrian crowd (social-force model), cut into ETH/UCY-style observation + prediction windows.

The embedded default dataset for trajectory forecasting when no ETH/UCY copy is at hand. It is **synthetic**: every
window names its recording ``social_force_<split>_<i>.txt`` in :attr:`TrajectoryWindows.files`, so results computed
on it cannot be mistaken for ETH/UCY numbers. The container is the one :func:`eigenkit.data.ethucy` returns.

**Model** (Helbing & Molnár 1995, "Social force model for pedestrian dynamics", Phys. Rev. E 51, 4282). Agent ``i``
at ``x_i`` with velocity ``v_i`` accelerates by

* a driving force ``(v0_i · e_i - v_i) / tau`` towards its goal (``e_i`` the unit vector to the goal, ``tau = 0.5 s``,
  desired speed ``v0_i ~ N(1.3, 0.2) m/s`` clipped to ``[0.5, 2.0]``);
* a pairwise repulsion ``A · exp((r_ij - d_ij) / B) · n_ij · w(phi_ij)`` from every other agent ``j`` (``d_ij`` the
  distance, ``n_ij`` the unit vector from ``j`` to ``i``, ``r_ij = 0.6 m`` the sum of the radii 0.3 m, ``A = 2.0
  m/s²`` (the ``repulsion`` argument), ``B = 0.3 m``), weighted by the anisotropy ``w = lambda + (1 - lambda) ·
  (1 + cos phi) / 2`` (``lambda = 0.5``, ``phi`` the angle between ``e_i`` and the direction to ``j``: agents ahead
  repel more than agents behind);
* a small Gaussian force noise (0.1 m/s² per axis).

The speed is clipped at ``1.3 · v0_i``. Integration is semi-implicit Euler (velocity first, then position) with
``substeps`` steps per recorded frame of ``dt`` (0.4 s, as ETH/UCY's 2.5 fps).

**Scene.** A square ``[0, area]²``. Moving agents belong to one of four flows (west→east, east→west, south→north,
north→south, so flows cross); each starts within ``0.2 · area`` of its side and walks to a random point of the
opposite side; on reaching it (``< 0.5 m``) it turns towards a random point of a random adjacent side (a turn of
about 90°, not a U-turn), so the crowd keeps moving and keeps crossing. About 15 % of the agents
(``round(0.15 · agents)``) stand: desired speed 0, held near a random anchor in the central ``[0.2, 0.8] · area``
square by a weak spring (desired velocity ``(anchor - x) / 1 s``, at most 0.1 m/s, which is also their speed limit)
and moved only by the force noise and by agents pushing past — the *static* group of EigenTrajectory's
moving/static split. The first 10 frames (4 s) are simulated and discarded (overlapping starts separate, agents
reach their speed). Recorded positions get Gaussian noise (0.02 m per axis, a tracker's error) and are rounded to 4
decimals as the ETH/UCY loader rounds.

**Windows.** Every agent is present in every frame, so each recording gives the ``frames - (obs_len + pred_len) + 1``
windows starting at every frame (skip 1), each with all ``agents`` agents ordered by id (windows with fewer than
``min_agents`` agents are dropped, i.e. all or none). ``start_frame`` is ``10 · w`` (ETH/UCY's frame-id step).

**Randomness.** Recording ``i`` of split ``s`` draws all its random numbers (initial state, goals, noise) on the
host from ``np.random.default_rng(np.random.SeedSequence([seed, s_index, i]))`` (``train`` 0, ``val`` 1, ``test``
2): the splits never share a recording. The simulation runs in JAX (``lax.scan`` over the substeps, broadcasting over
agents), jitted once per shape, in float64 when ``jax_enable_x64`` is on and float32 otherwise; the result is float64
NumPy either way (the same seed gives the same draws under both settings; the float32 trajectories differ from the
float64 ones by rounding, which grows over a long recording).

Example:

    >>> from eigenkit.data import social_force_crowd, pad_windows
    >>> w = social_force_crowd("train", num_recordings=1, agents=6, frames=24)
    >>> w.num_windows, w.num_agents, w.trajectories.shape, w.files
    (5, 30, (30, 20, 2), ('social_force_train_0.txt',))
    >>> traj, mask = pad_windows(w)
    >>> traj.shape, bool(mask.all())
    ((5, 6, 20, 2), True)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from eigenkit.data._ethucy import ETHUCY_SPLITS, TrajectoryWindows

__all__ = ["social_force_crowd"]

_TAU = 0.5  # s, relaxation time of the driving force
_V0_MEAN, _V0_STD, _V0_MIN, _V0_MAX = 1.3, 0.2, 0.5, 2.0  # m/s, desired speeds of moving agents
_B = 0.3  # m, range of the repulsion
_RADIUS = 0.3  # m, per agent (r_ij = 0.6 m)
_LAMBDA = 0.5  # anisotropy
_MAX_SPEED_FACTOR = 1.3  # speed clipped at 1.3 v0
_GOAL_RADIUS = 0.5  # m, a goal closer than this is reached
_STATIC_FRACTION = 0.15
_STATIC_MAX_SPEED = 0.1  # m/s, speed limit (and spring limit) of standing agents
_ANCHOR_TIME = 1.0  # s, standing agents' desired velocity (anchor - x) / _ANCHOR_TIME
_FORCE_NOISE = 0.1  # m/s² per axis
_POSITION_NOISE = 0.02  # m per axis, added to the recorded positions
_START_DEPTH = 0.2  # moving agents start within this fraction of area from their side
_MARGIN = 0.05  # goals and starts keep this fraction of area from the corners / edges
_BURN_IN = 10  # frames simulated and discarded
_FRAME_STEP = 10.0  # ETH/UCY frame-id step between recorded frames


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _positive_float(name: str, v, *, allow_zero: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite {'non-negative' if allow_zero else 'positive'} number, got {v!r}")
    return f


@functools.partial(jax.jit, static_argnames=("agents", "frames", "substeps"))
def _simulate(static, u, z, dt, area, repulsion, *, agents: int, frames: int, substeps: int):
    """One recording: float ``(frames, agents, 2)`` noisy positions (dtype of ``dt``), burn-in dropped.

    ``static`` bool ``(agents,)``; ``u`` uniforms in [0, 1) ``(7 + 2 · steps, agents)`` and ``z`` standard normals
    ``(1 + 2 · steps + 2 · frames, agents)``, ``steps = (_BURN_IN + frames) · substeps`` (drawn on the host).
    """
    dtype = dt.dtype
    steps = (_BURN_IN + frames) * substeps
    v0 = jnp.clip(_V0_MEAN + _V0_STD * z[0], _V0_MIN, _V0_MAX)
    v0 = jnp.where(static, jnp.zeros((), dtype), v0)
    vmax = jnp.where(static, jnp.asarray(_STATIC_MAX_SPEED, dtype), _MAX_SPEED_FACTOR * v0)
    axis = u[0] < 0.5  # False: x-flow, True: y-flow
    sign = jnp.where(u[1] < 0.5, jnp.ones((), dtype), -jnp.ones((), dtype))
    lo, hi = _MARGIN * area, (1 - _MARGIN) * area

    # Along the flow axis: start near the side behind (sign > 0: low side), goal on the opposite side.
    depth = _START_DEPTH * area * u[2]
    along = jnp.where(sign > 0, lo + depth, hi - depth)
    lateral = lo + (hi - lo) * u[3]
    goal_lateral = lo + (hi - lo) * u[4]

    def place(axis, along, lateral):
        return jnp.stack([jnp.where(axis, lateral, along), jnp.where(axis, along, lateral)], axis=-1)

    def goal_of(side):  # side = (on a y-side, on the high side, position along the side)
        goal_axis, goal_high, goal_lateral = side
        return place(goal_axis, jnp.where(goal_high, hi, lo), goal_lateral)

    anchor = (0.2 + 0.6 * u[5:7].T) * area
    x = jnp.where(static[:, None], anchor, place(axis, along, lateral))
    side = (axis, sign > 0, goal_lateral)
    goal = goal_of(side)
    to_goal = goal - x
    e = to_goal / jnp.maximum(jnp.linalg.norm(to_goal, axis=-1, keepdims=True), 1e-6)
    v = v0[:, None] * e
    h = dt / substeps
    eye = jnp.eye(agents, dtype=bool)

    def substep(state, noise):
        x, v, side = state
        new_lateral, new_high, force_noise = noise
        reached = (jnp.linalg.norm(goal_of(side) - x, axis=-1) < _GOAL_RADIUS) & ~static
        # A reached goal moves to a random point of a random adjacent side: the agent turns (about 90°) and walks on.
        side = (side[0] ^ reached, jnp.where(reached, new_high, side[1]), jnp.where(reached, new_lateral, side[2]))
        to_goal = goal_of(side) - x
        e = to_goal / jnp.maximum(jnp.linalg.norm(to_goal, axis=-1, keepdims=True), 1e-6)
        e = jnp.where(static[:, None], jnp.zeros((), dtype), e)
        spring = (anchor - x) / _ANCHOR_TIME
        spring = spring * jnp.minimum(1, _STATIC_MAX_SPEED / jnp.maximum(
            jnp.linalg.norm(spring, axis=-1, keepdims=True), 1e-6))
        desired = jnp.where(static[:, None], spring, v0[:, None] * e)
        force = (desired - v) / _TAU
        diff = x[:, None, :] - x[None, :, :]  # (i, j, 2): from j to i
        d = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
        n = diff / jnp.where(eye, jnp.ones((), dtype), jnp.maximum(d, 1e-6))[..., None]
        cos_phi = -jnp.sum(n * e[:, None, :], axis=-1)  # e_i against the direction from i to j
        aniso = _LAMBDA + (1 - _LAMBDA) * (1 + cos_phi) / 2
        mag = jnp.where(eye, jnp.zeros((), dtype), repulsion * jnp.exp((2 * _RADIUS - d) / _B) * aniso)
        force = force + jnp.sum(mag[..., None] * n, axis=1)
        force = force + force_noise
        v = v + h * force
        speed = jnp.linalg.norm(v, axis=-1, keepdims=True)
        v = v * jnp.minimum(1, vmax[:, None] / jnp.maximum(speed, 1e-6))
        x = x + h * v
        return (x, v, side), x

    force_noise = _FORCE_NOISE * z[1:1 + 2 * steps].reshape(steps, 2, agents).transpose(0, 2, 1)
    noise = (lo + (hi - lo) * u[7:7 + steps], u[7 + steps:] < 0.5, force_noise)
    _, xs = jax.lax.scan(substep, (x, v, side), noise)
    xs = xs[(_BURN_IN + 1) * substeps - 1::substeps]  # the position at the end of each recorded frame
    return xs + _POSITION_NOISE * z[1 + 2 * steps:].reshape(frames, 2, agents).transpose(0, 2, 1)


def social_force_crowd(split: str = "train", *, num_recordings: int = 4, agents: int = 24, frames: int = 120,
                       seed: int = 0, obs_len: int = 8, pred_len: int = 12, dt: float = 0.4, substeps: int = 4,
                       area: float = 12.0, min_agents: int = 2, repulsion: float = 2.0) -> TrajectoryWindows:
    """Windows of synthetic social-force crowd recordings (see the module docstring for the model).

    Args:
      split: ``"train"``, ``"val"`` or ``"test"``; each draws its recordings from its own seeds.
      num_recordings: recordings (files) in the split.
      agents: pedestrians per recording (about 15 % of them standing).
      frames: recorded frames per recording (``frames · dt`` seconds); at least ``obs_len + pred_len``.
      seed: base seed (a non-negative int); same arguments and seed give the same windows.
      obs_len, pred_len: observed / predicted steps (8 / 12 as ETH/UCY).
      dt: seconds between recorded frames (0.4 as ETH/UCY).
      substeps: integration steps per recorded frame.
      area: side of the square scene in metres.
      min_agents: drop windows with fewer agents (every window has ``agents`` agents, so ``agents < min_agents``
        leaves no window, a ValueError).
      repulsion: the repulsion strength ``A`` in m/s² (2.0; 0 switches the agents' interaction off).

    Returns:
      :class:`~eigenkit.data.TrajectoryWindows` with ``num_recordings · (frames - obs_len - pred_len + 1)`` windows of
      ``agents`` agents each; float64 positions in metres rounded to 4 decimals; ``files`` are
      ``social_force_<split>_<i>.txt``, ``start_frame`` ``10 · w``, ``ped_ids`` ``0 .. agents - 1``.

    Raises:
      ValueError: an unknown split, a non-positive count or length, ``frames < obs_len + pred_len``, a non-positive
        ``dt`` or ``area``, a negative ``repulsion``, or ``agents < min_agents`` (the message names the argument).
    """
    if split not in ETHUCY_SPLITS:
        raise ValueError(f"split must be one of {', '.join(ETHUCY_SPLITS)}, got {split!r}")
    num_recordings = _positive_int("num_recordings", num_recordings)
    agents = _positive_int("agents", agents)
    frames = _positive_int("frames", frames)
    obs_len = _positive_int("obs_len", obs_len)
    pred_len = _positive_int("pred_len", pred_len)
    substeps = _positive_int("substeps", substeps)
    min_agents = _positive_int("min_agents", min_agents)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    dt = _positive_float("dt", dt)
    area = _positive_float("area", area)
    repulsion = _positive_float("repulsion", repulsion, allow_zero=True)
    seq_len = obs_len + pred_len
    if frames < seq_len:
        raise ValueError(f"frames must be >= obs_len + pred_len = {seq_len}, got {frames}")
    if agents < min_agents:
        raise ValueError(f"min_agents = {min_agents} exceeds agents = {agents}: every window has agents agents, so "
                         "none would be kept")

    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64 is enabled
    split_index = ETHUCY_SPLITS.index(split)
    n_windows = frames - seq_len + 1
    n_static = round(_STATIC_FRACTION * agents)
    steps = (_BURN_IN + frames) * substeps
    trajectories = []
    for i in range(num_recordings):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), split_index, i]))
        static = np.zeros(agents, bool)
        static[rng.permutation(agents)[:n_static]] = True
        u = rng.random((7 + 2 * steps, agents))
        z = rng.standard_normal((1 + 2 * steps + 2 * frames, agents))
        xs = _simulate(static, u.astype(dtype), z.astype(dtype), *(np.asarray(v, dtype) for v in (dt, area, repulsion)),
                       agents=agents, frames=frames, substeps=substeps)
        xs = np.around(np.asarray(xs, np.float64), 4)  # (frames, agents, 2)
        win = np.lib.stride_tricks.sliding_window_view(xs, seq_len, axis=0)  # (n_windows, agents, 2, seq_len)
        trajectories.append(win.transpose(0, 1, 3, 2).reshape(n_windows * agents, seq_len, 2))
    return TrajectoryWindows(
        trajectories=np.ascontiguousarray(np.concatenate(trajectories)),
        scene_starts=np.arange(0, num_recordings * n_windows * agents + 1, agents, dtype=np.int64),
        file_index=np.repeat(np.arange(num_recordings, dtype=np.int32), n_windows),
        start_frame=np.tile(_FRAME_STEP * np.arange(n_windows, dtype=np.float64), num_recordings),
        ped_ids=np.tile(np.arange(agents, dtype=np.float64), num_recordings * n_windows),
        files=tuple(f"social_force_{split}_{i}.txt" for i in range(num_recordings)),
        obs_len=obs_len,
        pred_len=pred_len,
    )
