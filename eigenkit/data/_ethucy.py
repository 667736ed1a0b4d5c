"""ETH/UCY pedestrian trajectories in the Social-GAN text layout, cut into observation + prediction windows.

Layout: ``<root>/<scene>/<split>/*.txt`` — the five leave-one-scene-out splits ``eth, hotel, univ, zara1, zara2``
(each with ``train``, ``val``, ``test``) that Social-GAN, Social-STGCNN and EigenTrajectory ship (developers:
``../shared/data/ethucy/``, see ``../shared/DATA.md`` §1). Any folder with the same layout works (other scenes,
splits or recordings). Every line of a file is ``frame <TAB> ped_id <TAB> x <TAB> y`` (x, y in metres; one frame step
= 0.4 s in ETH/UCY). The project does not ship the recordings; the loader reads local files only.

Windowing (Social-GAN semantics, as EigenTrajectory's ``utils/dataloader.py`` ``TrajectoryDataset``), per file:

1. sort the unique frame ids; window ``w`` covers the ``seq_len = obs_len + pred_len`` consecutive unique frames
   starting at index ``w · skip``;
2. an agent belongs to the window iff it has a row in **every** one of those frames; its coordinates are rounded to
   4 decimals (``np.around``, as the official loader — it decides which agents are moving, see DATA.md);
3. a window is kept iff it has ``>= min_agents`` (2) agents, ordered by ped id;
4. files are read in **sorted** name order (the official loader uses ``os.listdir`` order; only the window order
   differs).

Deliberate differences from the official loader (documented, never silent):

* duplicate ``(frame, ped_id)`` rows raise :class:`ValueError` (the official loader fails with a NumPy broadcast
  error on such an agent, or drops it when its span is not ``seq_len``); ETH/UCY has none;
* an agent whose first and last rows span the window but that misses a frame in between is not in the window (the
  official loader, which checks only the span, fails with a broadcast error); ETH/UCY has none;
* NaN/Inf coordinates and lines without exactly 4 fields raise :class:`ValueError` naming the file and line;
* a recording shorter than ``seq_len`` unique frames contributes no window (as the official loader); a split with no
  window at all raises :class:`ValueError` saying the longest recording's length.

Windows index *unique* frame ids, so a gap in the frame numbering counts as one step (as the official code; no
retained ETH/UCY window spans one, DATA.md §1).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from eigenkit.data._common import MissingDataError

__all__ = ["ETHUCY_SCENES", "ETHUCY_SPLITS", "TrajectoryWindows", "ethucy", "ethucy_root", "pad_windows",
           "read_trajectory_file", "trajectory_windows"]

ETHUCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
ETHUCY_SPLITS = ("train", "val", "test")
_ENV = "EIGENKIT_ETHUCY"
_HINT = ("the ETH/UCY folder in the Social-GAN layout <root>/<scene>/<split>/*.txt (scenes eth, hotel, univ, zara1, "
         "zara2; e.g. the datasets/ folder of InhwanBae/EigenTrajectory or of agrimgupta92/sgan; developers: "
         "../shared/data/ethucy)")


@dataclasses.dataclass(frozen=True, eq=False)
class TrajectoryWindows:
    """Agent windows of one split, concatenated over windows (CSR layout, as the official ``seq_start_end``).

    Window ``w`` holds agents ``trajectories[scene_starts[w]:scene_starts[w + 1]]``.

    Attributes:
      trajectories: float64 ``(num_agents_total, obs_len + pred_len, 2)`` positions (x, y) in metres, 4 decimals.
      scene_starts: int64 ``(num_windows + 1,)`` offsets, ``scene_starts[0] = 0``, ``scene_starts[-1] =
        num_agents_total``.
      file_index: int32 ``(num_windows,)`` index into ``files`` of each window's source recording.
      start_frame: float64 ``(num_windows,)`` frame id of each window's first frame.
      ped_ids: float64 ``(num_agents_total,)`` each agent's ped id in its recording.
      files: the split's file names, sorted.
      obs_len: observed steps ``T_o`` (8 in the ETH/UCY protocol).
      pred_len: predicted steps ``T_p`` (12).
    """

    trajectories: np.ndarray
    scene_starts: np.ndarray
    file_index: np.ndarray
    start_frame: np.ndarray
    ped_ids: np.ndarray
    files: tuple[str, ...]
    obs_len: int
    pred_len: int

    @property
    def num_windows(self) -> int:
        return len(self.scene_starts) - 1

    @property
    def num_agents(self) -> int:
        """Total agent-windows (``num_agents_total``)."""
        return len(self.trajectories)

    @property
    def agents_per_window(self) -> np.ndarray:
        """int64 ``(num_windows,)`` agents of each window (the official ``num_peds_in_seq``)."""
        return np.diff(self.scene_starts)

    @property
    def obs(self) -> np.ndarray:
        """float64 ``(num_agents_total, obs_len, 2)`` observed part."""
        return self.trajectories[:, :self.obs_len]

    @property
    def pred(self) -> np.ndarray:
        """float64 ``(num_agents_total, pred_len, 2)`` future part."""
        return self.trajectories[:, self.obs_len:]

    @property
    def window_file(self) -> tuple[str, ...]:
        """The source file name of each window."""
        return tuple(self.files[i] for i in self.file_index)

    def window(self, w: int) -> np.ndarray:
        """float64 ``(agents, obs_len + pred_len, 2)`` agents of window ``w``."""
        if not -self.num_windows <= w < self.num_windows:
            raise IndexError(f"window {w} out of range for {self.num_windows} windows")
        w %= self.num_windows
        return self.trajectories[self.scene_starts[w]:self.scene_starts[w + 1]]

    def __len__(self) -> int:
        return self.num_windows

    def __repr__(self) -> str:
        return (f"TrajectoryWindows(num_windows={self.num_windows}, num_agents={self.num_agents}, "
                f"obs_len={self.obs_len}, pred_len={self.pred_len}, files={len(self.files)})")


def ethucy_root(root: str | os.PathLike | None = None) -> pathlib.Path:
    """The ETH/UCY root folder: ``root`` if given, else ``$EIGENKIT_ETHUCY``.

    Raises:
      MissingDataError: neither is set, or the folder does not exist (the message says what to provide).
    """
    env = os.environ.get(_ENV)
    if not root and not env:
        raise MissingDataError(f"ETH/UCY: no folder given. Pass root= or set {_ENV} to {_HINT}. The project does not "
                               "ship the recordings.")
    source = "the root argument" if root else f"{_ENV}={env}"
    path = pathlib.Path(root or env)
    if not path.is_dir():
        raise MissingDataError(f"ETH/UCY folder {path} (from {source}) does not exist; provide {_HINT}")
    return path


def read_trajectory_file(path: str | os.PathLike) -> np.ndarray:
    """One Social-GAN text file as float64 ``(rows, 4)`` = ``(frame, ped_id, x, y)``, in file order.

    Fields are tab-separated (the official ``delim='\\t'``); blank lines are skipped.

    Raises:
      ValueError: a line without exactly 4 fields, a field that is not a number, NaN/Inf values, duplicate
        ``(frame, ped_id)`` rows, or an empty file — the message names the file (and line).
    """
    path = pathlib.Path(path)
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.strip().split("\t")
            if fields == [""]:
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{lineno}: expected 4 tab-separated fields (frame, ped_id, x, y), got "
                                 f"{len(fields)}: {line.strip()[:80]!r}")
            try:
                rows.append([float(v) for v in fields])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: fields must be numbers, got {line.strip()[:80]!r}") from None
    if not rows:
        raise ValueError(f"{path}: no rows (expected lines 'frame<TAB>ped_id<TAB>x<TAB>y')")
    data = np.asarray(rows, np.float64)
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} row(s) with NaN/Inf values (first at data row "
                         f"{int(np.argmax(bad)) + 1})")
    _, counts = np.unique(data[:, :2], axis=0, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path}: {int((counts > 1).sum())} duplicate (frame, ped_id) pair(s); each agent must have "
                         "at most one row per frame")
    return data


def trajectory_windows(rows: np.ndarray, seq_len: int, *, skip: int = 1, min_agents: int = 2,
                       decimals: int | None = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Social-GAN windows of one recording (the official ``TrajectoryDataset.__init__`` loop, vectorised).

    Args:
      rows: float64 ``(rows, 4)`` = ``(frame, ped_id, x, y)``, any row order, without duplicate ``(frame, ped_id)``
        pairs (ValueError otherwise; :func:`read_trajectory_file`).
      seq_len: window length ``obs_len + pred_len`` in unique frames.
      skip: stride between window starts, in unique frames.
      min_agents: keep windows with at least this many full-length agents (the official ``> min_ped = 1``).
      decimals: round coordinates to this many decimals (official: 4); ``None`` keeps them.

    Returns:
      ``(trajectories, agents_per_window, start_frame, ped_ids)``: float64 ``(m, seq_len, 2)``, int64 ``(w,)``,
      float64 ``(w,)``, float64 ``(m,)``; windows by start, agents by ped id. A recording with fewer than
      ``seq_len`` unique frames gives ``m = w = 0``.
    """
    rows = np.asarray(rows, np.float64)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise ValueError(f"rows must have shape (rows, 4) = (frame, ped_id, x, y), got {rows.shape}")
    for name, v in (("seq_len", seq_len), ("skip", skip), ("min_agents", min_agents)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    frames = np.unique(rows[:, 0])
    t = np.searchsorted(frames, rows[:, 0])
    order = np.lexsort((t, rows[:, 1]))  # by ped, then time
    pid, ts, xy = rows[order, 1], t[order], rows[order, 2:4]
    if decimals is not None:
        xy = np.around(xy, decimals)
    n = len(rows)
    if np.any((pid[1:] == pid[:-1]) & (ts[1:] == ts[:-1])):
        raise ValueError("rows has duplicate (frame, ped_id) pairs; each agent must have at most one row per frame")
    empty = (np.zeros((0, seq_len, 2)), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    if n < seq_len:
        return empty
    # Row i starts a full window iff rows i .. i+seq_len-1 belong to one ped and span seq_len - 1 frames: with one row
    # per (frame, ped) and rows sorted by time within a ped, that is exactly "present in all seq_len frames".
    last = np.arange(seq_len - 1, n)
    first = last - (seq_len - 1)
    full = (pid[first] == pid[last]) & (ts[last] - ts[first] == seq_len - 1) & (ts[first] % skip == 0)
    starts = first[full]
    if len(starts) == 0:
        return empty
    w_start, w_ped = ts[starts], pid[starts]
    keep_order = np.lexsort((w_ped, w_start))  # windows by start, agents by ped id
    starts, w_start = starts[keep_order], w_start[keep_order]
    uniq, counts = np.unique(w_start, return_counts=True)
    kept = counts >= min_agents
    agent_keep = np.repeat(kept, counts)
    starts = starts[agent_keep]
    traj = xy[starts[:, None] + np.arange(seq_len)[None, :]]
    return traj, counts[kept].astype(np.int64), frames[uniq[kept]], pid[starts]


def ethucy(scene: str, split: str, *, root: str | os.PathLike | None = None, obs_len: int = 8, pred_len: int = 12,
           skip: int = 1, min_agents: int = 2) -> TrajectoryWindows:
    """The windows of ``<root>/<scene>/<split>/*.txt`` (EigenTrajectory's ``TrajectoryDataset``, files sorted).

    Args:
      scene: a folder under ``root`` (ETH/UCY: ``eth``, ``hotel``, ``univ``, ``zara1``, ``zara2``; the scene *left
        out* of train/val and used as test).
      split: a folder under the scene (``train``, ``val``, ``test``).
      root: the dataset root; default ``$EIGENKIT_ETHUCY``.
      obs_len, pred_len: observed / predicted steps (8 / 12: 3.2 s → 4.8 s).
      skip: stride between windows in unique frames (official 1).
      min_agents: drop windows with fewer agents (official: single-agent windows dropped, i.e. 2).

    Returns:
      :class:`TrajectoryWindows` (float64 ``(num_agents_total, obs_len + pred_len, 2)`` plus CSR offsets).

    Raises:
      MissingDataError: no root, or the root / scene / split folder is missing or has no ``.txt`` file (the message
        lists what exists).
      ValueError: malformed files (:func:`read_trajectory_file`), bad lengths, or no window in the whole split
        (e.g. ``obs_len + pred_len`` longer than every recording).

    Example::

        w = ethucy("eth", "test", root="../shared/data/ethucy")
        w.num_windows, w.num_agents            # (70, 181)
        w.obs.shape, w.pred.shape              # (181, 8, 2), (181, 12, 2)
        traj, mask = pad_windows(w)            # (70, max_agents, 20, 2), (70, max_agents)
    """
    for name, v in (("obs_len", obs_len), ("pred_len", pred_len)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    base = ethucy_root(root)
    scene_dir = base / scene
    if not scene_dir.is_dir():
        have = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise MissingDataError(f"ETH/UCY: unknown scene {scene!r}: {scene_dir} does not exist (scenes in {base}: "
                               f"{', '.join(have) or 'none'}); provide {_HINT}")
    split_dir = scene_dir / split
    if not split_dir.is_dir():
        have = sorted(p.name for p in scene_dir.iterdir() if p.is_dir())
        raise MissingDataError(f"ETH/UCY: unknown split {split!r} of scene {scene!r}: {split_dir} does not exist "
                               f"(splits there: {', '.join(have) or 'none'}; ETH/UCY has {', '.join(ETHUCY_SPLITS)})")
    paths = sorted(p for p in split_dir.iterdir() if p.suffix == ".txt" and p.is_file())
    if not paths:
        raise MissingDataError(f"ETH/UCY: {split_dir} has no .txt files (expected 'frame<TAB>ped_id<TAB>x<TAB>y' "
                               "recordings)")
    seq_len = int(obs_len) + int(pred_len)
    parts, longest = [], 0
    for i, path in enumerate(paths):
        rows = read_trajectory_file(path)
        longest = max(longest, len(np.unique(rows[:, 0])))
        parts.append((i, *trajectory_windows(rows, seq_len, skip=skip, min_agents=min_agents)))
    counts = np.concatenate([p[2] for p in parts])
    if len(counts) == 0:
        raise ValueError(f"ETH/UCY {scene}/{split}: no window of {seq_len} = obs_len + pred_len frames with >= "
                         f"{min_agents} agents (longest recording: {longest} unique frames)")
    return TrajectoryWindows(
        trajectories=np.concatenate([p[1] for p in parts]),
        scene_starts=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        file_index=np.concatenate([np.full(len(p[2]), p[0], np.int32) for p in parts]),
        start_frame=np.concatenate([p[3] for p in parts]),
        ped_ids=np.concatenate([p[4] for p in parts]),
        files=tuple(p.name for p in paths),
        obs_len=int(obs_len),
        pred_len=int(pred_len),
    )


def pad_windows(windows: TrajectoryWindows, max_agents: int | None = None, *,
                dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Pad every window to ``max_agents`` agents, for ``vmap`` over scenes.

    Args:
      windows: the split (:func:`ethucy`).
      max_agents: slots per window; default the largest window. Windows with more agents raise ValueError.
      dtype: dtype of the padded positions (float32 for accelerators).

    Returns:
      ``(trajectories, mask)``: ``(num_windows, max_agents, obs_len + pred_len, 2)`` positions, padded slots all
      zeros (a zero-speed, hence *static*, agent: EigenTrajectory's normalisation stays finite there), and bool
      ``(num_windows, max_agents)``, True for real agents (real agents first, in window order).
    """
    counts = windows.agents_per_window
    top = int(counts.max(initial=0))
    if max_agents is None:
        max_agents = top
    if isinstance(max_agents, bool) or not isinstance(max_agents, int | np.integer) or max_agents < 1:
        raise ValueError(f"max_agents must be a positive int, got {max_agents!r}")
    if top > max_agents:
        raise ValueError(f"max_agents = {max_agents} is smaller than the largest window ({top} agents)")
    w, t = windows.num_windows, windows.obs_len + windows.pred_len
    slot = np.arange(windows.num_agents) - np.repeat(windows.scene_starts[:-1], counts)
    row = np.repeat(np.arange(w), counts)
    out = np.zeros((w, int(max_agents), t, 2), dtype)
    out[row, slot] = windows.trajectories
    mask = np.zeros((w, int(max_agents)), bool)
    mask[row, slot] = True
    return out, mask
