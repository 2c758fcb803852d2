"""The health report, on a dataset crafted to have every issue and built by a
real worker: exact duplicates within and across splits, a grayscale image
among colour ones, an EXIF-rotated JPEG, a small class and a broken file;
then `digits dataset show` over it."""
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import make_images, stop_workers
from digits_engine import dataset_health, image_records, lmdb_store, record_index
from test_jobs_integration import run_cli

pytestmark = pytest.mark.timeout(300)
COPIES = 6  # identical images in class "circle": with 25% for validation some land in train, some in val


def rotated_jpeg(path: Path) -> None:
    """30x10 as stored, red on the left and blue on the right; EXIF orientation 6: shown turned 90° clockwise."""
    pixels = np.zeros((10, 30, 3), np.uint8)
    pixels[:, :15] = (230, 20, 20)
    pixels[:, 15:] = (20, 20, 230)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)


def craft(root: Path) -> Path:
    make_images(root, per_class=12, classes=("circle", "square", "triangle"))
    make_images(root, per_class=4, classes=("tiny",), seed=3)
    for i in range(1, COPIES):
        shutil.copy(root / "circle" / "000.png", root / "circle" / f"copy{i}.png")
    Image.new("L", (16, 16), 128).save(root / "square" / "gray.png")
    rotated_jpeg(root / "triangle" / "rotated.jpg")
    (root / "square" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    jobs = root / "jobs"
    jobs.mkdir()
    folder = craft(root / "images")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITS_JOBS_DIR", str(jobs))
        for name in ("DIGITS_DATA_ROOTS", "DIGITS_DATASET_SLOTS"):
            mp.delenv(name, raising=False)
        code, out, err = run_cli("dataset", "create", "--name", "crafted", "--folder", folder, "--width", 16,
                                 "--height", 16, "--seed", 1, "--wait", "--json")
        try:
            assert code == 0, err + out
            job_id = json.loads(out)["id"]
            code, show, err = run_cli("dataset", "show", job_id, "--json")
            assert code == 0, err
            code, text, err = run_cli("dataset", "show", job_id, "--threshold", "20")
            assert code == 0, err
        finally:
            stop_workers(jobs)
    job_dir = jobs / job_id
    return SimpleNamespace(dir=job_dir, stats=json.loads((job_dir / "stats.json").read_text()),
                           show=json.loads(show), text=text)


def row_named(job_dir: Path, name: str) -> tuple[str, dict]:
    for split in record_index.splits(job_dir):
        rows = record_index.read_page(job_dir, split, 0, 10_000)
        for row in rows:
            if Path(row["name"]).name == name:
                return split, row
    raise AssertionError(f"no record from {name}")


def test_identical_images_are_duplicates_within_and_across_splits(built):
    health = built.stats["health"]
    assert health["duplicates"] + health["cross_split_duplicates"] == COPIES - 1
    assert health["cross_split_duplicates"] >= 1
    issues = dataset_health.issues(built.dir, built.stats)
    leaks = issues[issues["issue"] == "duplicate across splits"]
    assert len(leaks) == health["cross_split_duplicates"]
    assert set(leaks["split"]) <= {"val", "test"}
    assert leaks["detail"].str.contains("same pixels as train image").all()
    copies = {"000.png", *(f"copy{i}.png" for i in range(1, COPIES))}
    flagged = issues[issues["issue"].str.startswith("duplicate")]
    assert {Path(f).name for f in flagged["file"]} < copies
    assert len(flagged) == COPIES - 1  # the first of the identical images is not an issue


def test_a_grayscale_source_among_colour_ones_is_mixed(built):
    health = built.stats["health"]
    assert health["mixed_modes"] is True
    assert health["modes"]["grayscale"] == 1
    split, row = row_named(built.dir, "gray.png")
    assert row["mode"] == "L"
    issues = dataset_health.issues(built.dir, built.stats)
    [mixed] = issues[issues["issue"] == "mixed modes"].itertuples()
    assert Path(mixed.file).name == "gray.png" and mixed.split == split
    assert "grayscale source among" in mixed.detail


def test_an_exif_rotated_jpeg_is_turned_upright_in_its_record(built):
    assert built.stats["health"]["exif_rotated"] == 1
    split, row = row_named(built.dir, "rotated.jpg")
    assert row["exif_rotated"] is True
    assert (row["width"], row["height"]) == (30, 10)  # as stored in the file
    [record] = lmdb_store.read_indices(built.dir / split, [row["position"]])
    pixels, label = image_records.read_record(record)
    assert built.stats["labels"][label] == "triangle"
    top, bottom = pixels[:8].mean(axis=(0, 1)), pixels[8:].mean(axis=(0, 1))
    # orientation 6 turns the image clockwise: its left (red) half is now the top one
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]
    issues = dataset_health.issues(built.dir, built.stats)
    assert [Path(f).name for f in issues[issues["issue"] == "EXIF-rotated"]["file"]] == ["rotated.jpg"]


def test_small_classes_depend_on_the_threshold(built):
    assert [c["class"] for c in built.stats["health"]["classes_below_threshold"]] == ["tiny"]
    assert dataset_health.classes_below(built.stats, 2) == []
    wide = dataset_health.issues(built.dir, built.stats, threshold=100)
    assert len(wide[wide["issue"] == "few images"]) == 4


def test_the_issues_csv_has_one_row_per_file(built, tmp_path):
    issues = dataset_health.issues(built.dir, built.stats)
    issues.to_csv(tmp_path / "issues.csv", index=False)
    back = pd.read_csv(tmp_path / "issues.csv", keep_default_na=False)
    assert list(back.columns) == ["split", "file", "issue", "detail"]
    assert set(back["issue"]) == {"skipped", "duplicate across splits", "mixed modes", "EXIF-rotated", "few images"} \
        | ({"duplicate"} if built.stats["health"]["duplicates"] else set())
    [skipped] = back[back["issue"] == "skipped"].itertuples()
    assert Path(skipped.file).name == "broken.png" and "not an image" in skipped.detail


def test_dataset_show_json_has_the_stats_and_the_health(built):
    show = built.show
    assert show["id"] == built.dir.name and show["status"] == "Done" and show["name"] == "crafted"
    stats = show["stats"]
    assert set(stats["counts"]) == {"train", "val"}
    assert set(stats["counts"]["train"]) == {"circle", "square", "triangle", "tiny"}
    assert sum(stats["totals"].values()) == stats["total"] == 12 * 3 + 4 + (COPIES - 1) + 2
    assert [Path(s["path"]).name for s in stats["skipped_files"]] == ["broken.png"]
    assert stats["skipped_files"][0]["reason"]
    health = show["health"]
    assert health["threshold"] == 10
    assert health["duplicates"] + health["cross_split_duplicates"] == COPIES - 1
    assert health["mixed_modes"] is True and health["exif_rotated"] == 1
    assert health["classes_below_threshold"] == [{"class": "tiny", "train": stats["counts"]["train"]["tiny"]}]


def test_dataset_show_text_is_a_table(built):
    lines = built.text.splitlines()
    assert lines[0].startswith(built.dir.name) and "Done" in lines[0]
    assert lines[1].split() == ["class", "train", "val"]
    assert any(line.split()[0] == "tiny" for line in lines)
    assert any("broken.png" in line for line in lines)
    assert "classes with fewer than 20 training images: " in built.text  # --threshold 20


def test_dataset_show_of_a_missing_job_says_so(built, monkeypatch):
    monkeypatch.setenv("DIGITS_JOBS_DIR", str(built.dir.parent))
    code, out, err = run_cli("dataset", "show", "20990101-000000-0000", "--json")
    assert code == 2 and "No job with id" in json.loads(out)["error"]


def test_duplicates_keep_the_first_of_each_pixel_set():
    frame = pd.DataFrame({"split": ["train", "train", "val", "val", "test"], "name": list("abcde"),
                          "hash": [b"x", b"x", b"x", b"y", b"y"], "mode": ["RGB"] * 5,
                          "exif_rotated": [False] * 5, "position": range(5)})
    found = dataset_health.duplicates(frame)
    assert list(found["name"]) == ["b", "c", "e"]
    assert list(found["leak"]) == [False, True, True]
    assert list(found["same_as"]) == ["a", "a", "d"]
    assert list(found["same_as_split"]) == ["train", "train", "val"]


def test_a_dataset_without_an_index_reports_what_its_stats_know(tmp_path):
    stats = {"labels": ["a", "b"], "counts": {"train": {"a": 3, "b": 30}},
             "skipped_files": [{"path": "/x/bad.png", "reason": "not an image"}]}
    summary, issues = dataset_health.report(tmp_path, stats)
    assert summary["indexed"] is False
    assert (summary["duplicates"], summary["cross_split_duplicates"], summary["exif_rotated"]) == (0, 0, 0)
    assert summary["classes_below_threshold"] == [{"class": "a", "train": 3}]
    assert list(issues["issue"]) == ["skipped", "few images"]
