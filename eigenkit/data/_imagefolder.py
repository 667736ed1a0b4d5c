"""Image datasets in the ImageFolder layout (ImageNet-1K and the transfer datasets), streamed from JPEG files.

Layout (torchvision ``ImageFolder``; the layout of the usual ImageNet preparation scripts)::

    root/<split>/<class name>/<image>.JPEG       e.g. imagenet/train/n01440764/n01440764_10026.JPEG

Class ``i`` is the ``i``-th class folder in sorted order (as torchvision and mmpretrain's ``CustomDataset``), so the
1000 WordNet ids of ImageNet map to the standard label indices.

The training stream (:class:`ImageBatches`) is a pure function of the step: the batch of step ``s`` is made from
epoch ``e = s // steps_per_epoch``'s permutation ``default_rng([seed, e])`` of the files and per-image augmentation
generators ``default_rng([seed, s, i])`` (``i`` the position in the *global* batch), so a resumed run sees exactly the
batches an uninterrupted run would have seen, mid-epoch included, and the global batch does not depend on how many
processes share it (process ``p`` decodes its contiguous slice). Decoding runs in a thread pool (Pillow releases the
GIL while decoding and resizing) with the next batches prefetched.

Transforms (the standard ones, as in the GCR/mmpretrain ResNet recipes):

* train: ``RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3))`` (torchvision's sampling: 10 tries, then a
  centre crop clamped to the ratio range) + horizontal flip with probability 1/2;
* eval: resize the shorter side to 256 then centre-crop 224.

Deviation: resizing is Pillow's bilinear (antialiased, as torchvision on PIL images); mmpretrain's default backend is
OpenCV bilinear (not antialiased), which differs by a few grey levels on downscaled images.

Images come out as uint8 ``(B, H, W, 3)`` RGB; normalise on the device with :func:`normalize_images` (4× less
host-to-device traffic than float32).

On Grain (:func:`eigenkit.train.grain_batches`): :class:`ImageRecords` is the data source (record ``i`` = the path
index and label of file ``i``) and :class:`RandomCropFlip` the per-record training transform, decoded in Grain's
reader threads or worker processes with Grain's per-record generators; the iterator's position is checkpointed
instead of being a function of the step::

    it = train.grain_batches(data.ImageRecords(ds), 256, seed=0, transforms=[data.RandomCropFlip(ds, 224)],
                             worker_count=8)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import pathlib
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from eigenkit.data._common import MissingDataError

try:  # the Grain transform base class; without grain installed RandomCropFlip is a plain callable
    from grain.python import RandomMapTransform as _RandomMap
except ImportError:  # pragma: no cover - grain is a dependency of eigenkit
    _RandomMap = object

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "ImageBatches",
    "ImageFolder",
    "ImageRecords",
    "RandomCropFlip",
    "center_crop_image",
    "eval_image_batches",
    "image_folder",
    "load_image",
    "normalize_images",
    "random_resized_crop",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: ImageNet channel statistics on the 0-255 scale (torchvision / mmpretrain ``data_preprocessor``).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the ImageFolder pipeline needs Pillow: pip install 'eigenkit[experiments]'") from e
    return Image


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The files of one split: ``paths[i]`` has label ``labels[i]`` (index into ``classes``)."""

    root: pathlib.Path
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def image_folder(root: str | os.PathLike, *, classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS) -> ImageFolder:
    """List an ImageFolder split: one sub-folder per class, images inside (searched recursively).

    Args:
      root: the split's folder (e.g. ``imagenet/train``).
      classes: class folder names in label order; default all sub-folders of ``root`` sorted. Pass the training
        split's ``classes`` when listing its validation split, so both share one label map.
      extensions: file suffixes counted as images (case-insensitive).

    Raises:
      MissingDataError: ``root`` is not a directory, has no class folders, or a class folder has no images.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise MissingDataError(f"image folder {root} does not exist; expected the ImageFolder layout "
                               "root/<class name>/<image>.JPEG (for ImageNet: the train/ or val/ folder)")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if classes is None:
        classes = found
    classes = tuple(str(c) for c in classes)
    if not classes:
        raise MissingDataError(f"{root} has no class sub-folders (expected root/<class name>/<image>.JPEG)")
    missing = [c for c in classes if not (root / c).is_dir()]
    if missing:
        raise MissingDataError(f"{root} lacks the class folders {missing[:5]}{'…' if len(missing) > 5 else ''} "
                               f"({len(missing)} of {len(classes)})")
    exts = tuple(e.lower() for e in extensions)
    paths, labels = [], []
    for i, c in enumerate(classes):
        files = sorted(str(p) for p in (root / c).rglob("*") if p.suffix.lower() in exts and p.is_file())
        if not files:
            raise MissingDataError(f"class folder {root / c} has no images with suffixes {exts}")
        paths.extend(files)
        labels.extend([i] * len(files))
    return ImageFolder(root, classes, tuple(paths), np.asarray(labels, np.int32))


def load_image(path: str | os.PathLike):
    """Open an image file as an RGB ``PIL.Image`` (greyscale and CMYK JPEGs — ImageNet has both — converted)."""
    img = _pil().open(path)
    return img.convert("RGB") if img.mode != "RGB" else img


def random_resized_crop(img, size: int, rng: np.random.Generator, *, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    """torchvision's ``RandomResizedCrop``: a crop of random area fraction in ``scale`` and aspect ratio in ``ratio``
    (log-uniform), resized bilinearly to ``size × size``; uint8 ``(size, size, 3)``."""
    w_img, h_img = img.size
    area = w_img * h_img
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_r))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= w_img and 0 < h <= h_img:
            top = int(rng.integers(0, h_img - h + 1))
            left = int(rng.integers(0, w_img - w + 1))
            break
    else:  # fallback: the central crop with the ratio clamped to the allowed range
        in_ratio = w_img / h_img
        if in_ratio < min(ratio):
            w, h = w_img, int(round(w_img / min(ratio)))
        elif in_ratio > max(ratio):
            w, h = int(round(h_img * max(ratio))), h_img
        else:
            w, h = w_img, h_img
        top, left = (h_img - h) // 2, (w_img - w) // 2
    out = img.resize((size, size), _pil().BILINEAR, box=(left, top, left + w, top + h))
    return np.asarray(out, np.uint8)


def center_crop_image(img, size: int = 224, resize: int = 256) -> np.ndarray:
    """Resize the shorter side to ``resize`` (bilinear, aspect kept), then take the central ``size × size`` crop;
    uint8 ``(size, size, 3)``."""
    w, h = img.size
    if w <= h:
        nw, nh = resize, max(1, int(round(h * resize / w)))
    else:
        nw, nh = max(1, int(round(w * resize / h))), resize
    img = img.resize((nw, nh), _pil().BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    if top < 0 or left < 0:
        raise ValueError(f"crop size {size} exceeds the resized image {nw}×{nh} (resize={resize})")
    return np.asarray(img.crop((left, top, left + size, top + size)), np.uint8)


def normalize_images(x, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, dtype=None):
    """``(x - mean) / std`` per channel for uint8 images ``(..., 3)`` (jnp; run it inside the jitted step)."""
    import jax.numpy as jnp

    dtype = jnp.float32 if dtype is None else dtype
    m = jnp.asarray(mean, jnp.float32)
    s = jnp.asarray(std, jnp.float32)
    return ((x.astype(jnp.float32) - m) / s).astype(dtype)


def _process_slice(batch_size: int, process_index: int | None, process_count: int | None) -> tuple[int, int]:
    from eigenkit.train import process_slice  # the one definition of a process's rows in a global batch

    return process_slice(batch_size, process_index, process_count)


class ImageBatches:
    """Training batches of an :class:`ImageFolder`: ``batches(step) -> {"x": uint8 (b, S, S, 3), "y": int32 (b,)}``
    with ``b = batch_size / process_count`` (this process's slice of the global batch; see the module docstring for
    the sampler, which is a pure function of ``(seed, step)``).

    Args:
      dataset: the training split.
      batch_size: GLOBAL batch size; the last incomplete batch of each epoch is dropped.
      seed: seed of the epoch permutations and of the augmentations.
      image_size: crop size S (224).
      scale, ratio: ``RandomResizedCrop`` ranges; flip: horizontal flips with probability 1/2.
      num_workers: decoding threads; prefetch: batches decoded ahead.
      process_index, process_count: default ``jax.process_index()`` / ``jax.process_count()``.
    """

    def __init__(self, dataset: ImageFolder, batch_size: int, *, seed: int, image_size: int = 224,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 flip: bool = True, num_workers: int = 8, prefetch: int = 2, process_index: int | None = None,
                 process_count: int | None = None):
        if batch_size < 1 or len(dataset) < batch_size:
            raise ValueError(f"batch_size must be in [1, {len(dataset)}] (the dataset size), got {batch_size}")
        self.dataset, self.batch_size, self.seed = dataset, int(batch_size), int(seed)
        self.image_size, self.scale, self.ratio, self.flip = int(image_size), scale, ratio, bool(flip)
        self.start, self.local_batch = _process_slice(self.batch_size, process_index, process_count)
        self.steps_per_epoch = len(dataset) // self.batch_size
        self.prefetch = int(prefetch)
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, int(num_workers)))  # decodes images
        # assembles prefetched batches; separate from the decode pool, whose workers a batch waits on (one pool
        # for both deadlocks once every worker holds a batch waiting for its images)
        self._ahead = concurrent.futures.ThreadPoolExecutor(max(1, self.prefetch))
        self._pending: dict[int, concurrent.futures.Future] = {}
        self._perm: tuple[int, np.ndarray] | None = None
        self._lock = threading.Lock()

    def indices(self, step: int) -> np.ndarray:
        """Dataset indices of the GLOBAL batch of ``step`` (``(batch_size,)``)."""
        epoch, pos = divmod(int(step), self.steps_per_epoch)
        with self._lock:
            if self._perm is None or self._perm[0] != epoch:
                self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset)))
            perm = self._perm[1]
        return perm[pos * self.batch_size:(pos + 1) * self.batch_size]

    def _one(self, step: int, i: int, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step, i])
        x = random_resized_crop(load_image(self.dataset.paths[index]), self.image_size, rng, scale=self.scale,
                                ratio=self.ratio)
        if self.flip and rng.random() < 0.5:
            x = x[:, ::-1]
        return x

    def _make(self, step: int) -> dict:
        idx = self.indices(step)[self.start:self.start + self.local_batch]
        images = list(self._pool.map(lambda a: self._one(step, self.start + a[0], int(a[1])), enumerate(idx)))
        return {"x": np.stack(images), "y": self.dataset.labels[idx]}

    def __call__(self, step: int) -> dict:
        step = int(step)
        fut = self._pending.pop(step, None)
        for s in list(self._pending):  # a jump (resume, restart) invalidates what was prefetched
            if not step < s <= step + self.prefetch:
                self._pending.pop(s).cancel()
        for s in range(step + 1, step + 1 + self.prefetch):
            if s not in self._pending:
                self._pending[s] = self._ahead.submit(self._make, s)
        return fut.result() if fut is not None else self._make(step)

    def close(self) -> None:
        """Stop the decoding threads."""
        for f in self._pending.values():
            f.cancel()
        self._pending.clear()
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


class ImageRecords:
    """A Grain data source over an :class:`ImageFolder`: record ``i`` = ``{"index": i, "y": label}`` (the file is
    read by the transform, in Grain's reader threads / workers)."""

    def __init__(self, dataset: ImageFolder):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {"index": np.int64(i), "y": np.int32(self.dataset.labels[i])}

    def __repr__(self) -> str:  # recorded in Grain's saved state
        return f"ImageRecords({len(self.dataset)} images, {len(self.dataset.classes)} classes)"


class RandomCropFlip(_RandomMap):
    """Grain training transform of :class:`ImageRecords` records of ``dataset``: decode, ``RandomResizedCrop
    (image_size)``, flip with probability 1/2 (the transforms of :class:`ImageBatches`, drawn from Grain's
    per-record generator); ``{"index", "y"}`` -> ``{"x": uint8 (S, S, 3), "y"}``."""

    def __init__(self, dataset: ImageFolder, image_size: int = 224, *, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True):
        self.dataset, self.image_size, self.scale, self.ratio, self.flip = dataset, int(image_size), scale, ratio, flip

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        x = random_resized_crop(load_image(self.dataset.paths[int(element["index"])]), self.image_size, rng,
                                scale=self.scale, ratio=self.ratio)
        if self.flip and rng.random() < 0.5:
            x = x[:, ::-1]
        return {"x": np.ascontiguousarray(x), "y": element["y"]}


def eval_image_batches(dataset: ImageFolder, batch_size: int, *, image_size: int = 224,
                       resize_size: int = 256, num_workers: int = 8, process_index: int | None = None,
                       process_count: int | None = None) -> Iterator[tuple[dict, int]]:
    """Every image of ``dataset`` once, in order, resized/centre-cropped: yields ``(batch, valid)`` where ``batch``
    is this process's slice ``{"x": uint8, "y": int32, "mask": bool}`` of a global batch of ``batch_size`` (the last
    one zero-padded to it, padding masked out) and ``valid`` the number of real images in this process's slice.

    ``batch_size`` must divide by the number of devices of the mesh the batches go to (``shard_batch`` says so).
    """
    start, per = _process_slice(int(batch_size), process_index, process_count)
    n = len(dataset)
    pool = concurrent.futures.ThreadPoolExecutor(max(1, int(num_workers)))

    def one(index):
        return center_crop_image(load_image(dataset.paths[index]), image_size, resize_size)

    try:
        nxt = None
        starts = list(range(0, n, int(batch_size)))

        def submit(b0):
            idx = np.arange(b0 + start, min(b0 + start + per, n))
            return idx, [pool.submit(one, int(i)) for i in idx]

        for k, b0 in enumerate(starts):
            idx, futs = nxt if nxt is not None else submit(b0)
            nxt = submit(starts[k + 1]) if k + 1 < len(starts) else None
            x = np.zeros((per, image_size, image_size, 3), np.uint8)
            y = np.zeros((per,), np.int32)
            mask = np.zeros((per,), bool)
            for j, f in enumerate(futs):
                x[j] = f.result()
            y[:len(idx)] = dataset.labels[idx]
            mask[:len(idx)] = True
            yield {"x": x, "y": y, "mask": mask}, len(idx)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
