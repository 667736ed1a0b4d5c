"""The ImageFolder JPEG pipeline: listing, the standard transforms (against Pillow done by hand), a sampler that is a
pure function of (seed, step) and independent of the process count, exact evaluation batches."""

import numpy as np
import pytest
from PIL import Image

from eigenkit import data


def _write_folder(root, classes=("b_cls", "a_cls", "c_cls"), per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(20, 48)), int(rng.integers(20, 48))
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            if i == 1:  # a greyscale JPEG (ImageNet has some) and a PNG
                Image.fromarray(arr[..., 0], mode="L").save(root / c / f"{i}.JPEG")
            elif i == 2:
                Image.fromarray(arr).save(root / c / f"{i}.png")
            else:
                Image.fromarray(arr).save(root / c / f"{i}.JPEG", quality=95)
    (root / classes[0] / "notes.txt").write_text("not an image")
    return root


def test_listing_sorts_classes_and_shares_the_label_map(tmp_path):
    ds = data.image_folder(_write_folder(tmp_path / "train"))
    assert ds.classes == ("a_cls", "b_cls", "c_cls") and len(ds) == 12
    np.testing.assert_array_equal(np.bincount(ds.labels), [4, 4, 4])
    assert all(p.split("/")[-2] == ds.classes[y] for p, y in zip(ds.paths, ds.labels))
    val = data.image_folder(_write_folder(tmp_path / "val", classes=("c_cls", "a_cls", "b_cls"), per_class=2),
                            classes=ds.classes)
    assert all(p.split("/")[-2] == ds.classes[y] for p, y in zip(val.paths, val.labels))
    assert data.load_image(ds.paths[1]).mode == "RGB"


def test_listing_errors_name_the_layout(tmp_path):
    with pytest.raises(data.MissingDataError, match="ImageFolder layout"):
        data.image_folder(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(data.MissingDataError, match="has no images"):
        data.image_folder(tmp_path / "empty")
    root = _write_folder(tmp_path / "t")
    with pytest.raises(data.MissingDataError, match="lacks the class folders"):
        data.image_folder(root, classes=("a_cls", "zzz"))


def test_transforms_match_pillow_by_hand(tmp_path):
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    # eval: shorter side -> 36, centre crop 32
    out = data.center_crop_image(img, 32, 36)
    r = img.resize((60, 36), Image.BILINEAR)
    np.testing.assert_array_equal(out, np.asarray(r.crop((14, 2, 46, 34))))
    # train: the same generator state gives the same crop; the crop is the box torchvision's sampler draws
    a = data.random_resized_crop(img, 16, np.random.default_rng(5))
    b = data.random_resized_crop(img, 16, np.random.default_rng(5))
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # no admissible box within 10 tries (a 100 x 10 strip, full area): the ratio-clamped centre crop
    strip = Image.fromarray(np.random.default_rng(2).integers(0, 256, (10, 100, 3), dtype=np.uint8))
    out = data.random_resized_crop(strip, 8, np.random.default_rng(0), scale=(1.0, 1.0))
    w = int(round(10 * 4 / 3))
    left = (100 - w) // 2
    np.testing.assert_array_equal(out, np.asarray(strip.resize((8, 8), Image.BILINEAR, box=(left, 0, left + w, 10))))


def test_training_batches_are_a_pure_function_of_the_step(tmp_path):
    ds = data.image_folder(_write_folder(tmp_path / "train", per_class=5))  # 15 images, 3 steps of 4 per epoch
    one = data.ImageBatches(ds, 4, seed=3, image_size=16, num_workers=2, process_index=0, process_count=1)
    try:
        assert one.steps_per_epoch == 3
        seq = [one(s) for s in range(7)]  # sequential: served from the prefetch queue
        # an epoch draws distinct images; epochs are reshuffled
        ep0 = np.concatenate([one.indices(s) for s in range(3)])
        assert len(set(ep0.tolist())) == 12
        assert not np.array_equal(ep0, np.concatenate([one.indices(s) for s in range(3, 6)]))
        # a fresh loader started at step 5 (a resumed run) sees exactly the same batches
        resumed = data.ImageBatches(ds, 4, seed=3, image_size=16, num_workers=1, process_index=0, process_count=1)
        for s in (5, 6, 2):
            np.testing.assert_array_equal(resumed(s)["x"], seq[s]["x"])
            np.testing.assert_array_equal(resumed(s)["y"], seq[s]["y"])
        resumed.close()
        # two processes: each decodes its half; together they are the one-process global batch
        halves = [data.ImageBatches(ds, 4, seed=3, image_size=16, num_workers=1, process_index=p, process_count=2)
                  for p in (0, 1)]
        b = [h(4) for h in halves]
        np.testing.assert_array_equal(np.concatenate([b[0]["x"], b[1]["x"]]), seq[4]["x"])
        np.testing.assert_array_equal(np.concatenate([b[0]["y"], b[1]["y"]]), seq[4]["y"])
        for h in halves:
            h.close()
        assert seq[0]["x"].shape == (4, 16, 16, 3) and seq[0]["x"].dtype == np.uint8
        assert seq[0]["y"].dtype == np.int32
        np.testing.assert_array_equal(seq[1]["y"], ds.labels[one.indices(1)])
    finally:
        one.close()
    with pytest.raises(ValueError, match="batch_size"):
        data.ImageBatches(ds, 16, seed=0, process_index=0, process_count=1)
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        data.ImageBatches(ds, 4, seed=0, process_index=0, process_count=3)


def test_eval_batches_visit_every_image_once(tmp_path):
    ds = data.image_folder(_write_folder(tmp_path / "val", per_class=3))  # 9 images
    got = list(data.eval_image_batches(ds, 4, image_size=16, resize_size=18, num_workers=2, process_index=0,
                                       process_count=1))
    assert [v for _, v in got] == [4, 4, 1]
    ys = np.concatenate([b["y"][b["mask"]] for b, _ in got])
    np.testing.assert_array_equal(ys, ds.labels)
    x0 = data.center_crop_image(data.load_image(ds.paths[5]), 16, 18)
    np.testing.assert_array_equal(got[1][0]["x"][1], x0)
    assert not got[2][0]["mask"][1:].any() and not got[2][0]["x"][1:].any()
    # two processes: the union of their slices is the one-process stream
    parts = [list(data.eval_image_batches(ds, 4, image_size=16, resize_size=18, num_workers=1, process_index=p,
                                          process_count=2)) for p in (0, 1)]
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([parts[0][k][0]["x"], parts[1][k][0]["x"]]), got[k][0]["x"])
        np.testing.assert_array_equal(np.concatenate([parts[0][k][0]["mask"], parts[1][k][0]["mask"]]),
                                      got[k][0]["mask"])


def test_normalize_images():
    x = np.full((1, 2, 2, 3), 255, np.uint8)
    out = np.asarray(data.normalize_images(x))
    np.testing.assert_allclose(out[0, 0, 0], (255 - np.asarray(data.IMAGENET_MEAN)) / np.asarray(data.IMAGENET_STD),
                               rtol=1e-6)
    assert out.dtype == np.float32


def test_grain_image_pipeline_is_seeded_and_resumes(tmp_path):
    pytest.importorskip("grain", reason="install grain (pip install grain) for the Grain input pipeline")
    from eigenkit import train

    ds = data.image_folder(_write_folder(tmp_path / "train"))

    def pipeline():
        return train.grain_batches(data.ImageRecords(ds), 4, seed=5, transforms=[data.RandomCropFlip(ds, 16)],
                                   num_threads=2)

    it = pipeline()
    batches = [next(it) for _ in range(4)]
    assert batches[0]["x"].shape == (4, 16, 16, 3) and batches[0]["x"].dtype == np.uint8
    assert batches[0]["y"].dtype == np.int32
    again = pipeline()
    np.testing.assert_array_equal(next(again)["x"], batches[0]["x"])  # same seed, same crops
    state = again.get_state()
    for b in batches[1:3]:
        np.testing.assert_array_equal(next(again)["x"], b["x"])
    fresh = pipeline()
    fresh.set_state(state)  # position after batch 0: continues with batch 1, crops included
    np.testing.assert_array_equal(next(fresh)["x"], batches[1]["x"])
    # labels are those of the files: 12 images, 4 per class, the first epoch is a permutation of them
    ys = np.concatenate([b["y"] for b in batches[:3]])
    assert sorted(ys.tolist()) == sorted(ds.labels.tolist())
