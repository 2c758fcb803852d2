"""download_data shapes-detection: the offline KITTI-format demo set, seeded and complete."""
from pathlib import Path

import numpy as np
from PIL import Image

from digits_engine import download_data, kitti
from digits_engine import shapes_detection as sd


def _split_files(root: Path, split: str):
    images = sorted((root / split / "images").glob("*.png"))
    labels = sorted((root / split / "labels").glob("*.txt"))
    return images, labels


def test_writes_images_and_kitti_labels_that_describe_them(tmp_path):
    root = sd.make_shapes_detection(tmp_path / "demo", n_train=8, n_val=3, seed=5)
    assert (root / "classes.txt").read_text().split() == ["circle", "square", "triangle"]
    seen = set()
    for split, count in (("train", 8), ("val", 3)):
        images, labels = _split_files(root, split)
        assert [p.stem for p in images] == [p.stem for p in labels] == [f"{i:05d}" for i in range(count)]
        for image_path, label_path in zip(images, labels):
            assert all(len(line.split()) == 15 for line in label_path.read_text().splitlines())
            with Image.open(image_path) as img:
                assert img.size == (128, 128) and img.mode == "RGB"
                pixels = np.asarray(img, np.float64)
            parsed = kitti.read_label_file(label_path, image_size=(128, 128))
            assert parsed.problems == [] and parsed.clipped == 0
            assert 1 <= len(parsed.objects) <= 4
            for obj in parsed.objects:
                seen.add(obj.name)
                left, top, right, bottom = (int(v) for v in obj.box)
                assert 12 <= max(right - left, bottom - top) <= 70
                assert _box_stands_out(pixels, left, top, right, bottom)
    assert seen == {"circle", "square", "triangle"}


def _box_stands_out(pixels, left, top, right, bottom):
    """The 3x3 pixels at the box's centre differ in brightness from the background (the border).

    Every shape's colour is chosen to differ by at least 110 from its background."""
    luma = pixels @ [0.299, 0.587, 0.114]
    x, y = (left + right) // 2, (top + bottom) // 2
    border = np.median(np.concatenate([luma[0], luma[-1], luma[:, 0], luma[:, -1]]))
    return abs(np.median(luma[y - 1:y + 2, x - 1:x + 2]) - border) > 60


def test_same_seed_same_files_other_seed_differs(tmp_path):
    first = sd.make_shapes_detection(tmp_path / "a", n_train=3, n_val=1, seed=1)
    again = sd.make_shapes_detection(tmp_path / "b", n_train=3, n_val=1, seed=1)
    other = sd.make_shapes_detection(tmp_path / "c", n_train=3, n_val=1, seed=2)
    for split in ("train", "val"):
        for a, b, c in zip(*(sum(_split_files(r, split), []) for r in (first, again, other))):
            assert a.read_bytes() == b.read_bytes()
    assert (first / "train/labels/00000.txt").read_text() != (other / "train/labels/00000.txt").read_text()
    assert (first / "train/labels/00000.txt").read_text() != (first / "val/labels/00000.txt").read_text()


def test_cli_writes_the_full_set_and_if_missing_keeps_it(tmp_path, capsys):
    root = tmp_path / "demo"
    assert download_data.main(["shapes-detection", str(root)]) == 0
    assert [len(f) for f in _split_files(root, "train")] == [400, 400]
    assert [len(f) for f in _split_files(root, "val")] == [100, 100]
    assert "Wrote 400 train and 100 val images" in capsys.readouterr().out
    stamp = (root / "train/images/00000.png").stat().st_mtime_ns
    assert download_data.main(["shapes-detection", str(root), "--if-missing"]) == 0
    assert (root / "train/images/00000.png").stat().st_mtime_ns == stamp
    assert f"Demo dataset ready in {root.resolve()}" in capsys.readouterr().out


def test_if_missing_regenerates_an_incomplete_set(tmp_path):
    root = sd.make_shapes_detection(tmp_path / "demo", n_train=2, n_val=1)
    (root / "classes.txt").unlink()  # as if the last run was interrupted
    sd.ensure_shapes_detection(root, n_train=3, n_val=1)
    assert (root / "classes.txt").is_file() and len(_split_files(root, "train")[0]) == 3
    sd.ensure_shapes_detection(root, n_train=5, n_val=1)  # complete now: left alone
    assert len(_split_files(root, "train")[0]) == 3
