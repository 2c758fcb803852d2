"""The bad-input corpus of issue 6, built into a dataset by a real worker.

Every odd file is in one folder tree next to good images: the job must end
Done with the good and the odd-but-readable images, list every bad file in
stats["skipped_files"] with its reason, ignore hidden files and __MACOSX
folders without a word, and never decode the 20000x20000 PNG (the worker's
peak memory stays far below the 400 MB that decoding it would take).
"""
import json
import os
import re

import pytest

import image_corpus
from conftest import make_images
from test_jobs_integration import run_cli

pytestmark = pytest.mark.timeout(300)

GOOD = ("circle", "square", "café au lait")  # a class name with an accent and spaces
ODD_CLASS = "square"
BAD_CLASS = "circle"
# The worker alone peaks at 140-170 MiB, but once in a full CI run at 835 MiB (not explained yet); the bomb
# decoded takes it past 3,000 MiB, so this bound still tells one from the other.
WORKER_MEMORY_MIB = 1500


def make_corpus(root):
    make_images(root, per_class=4, classes=GOOD)
    for i, path in enumerate(sorted((root / "café au lait").iterdir())):
        path.rename(path.with_name(f"été n°{i}.png"))  # unicode and spaces in file names
    for name, (maker, _) in image_corpus.SKIPPED.items():
        maker(root / BAD_CLASS / name)
    for name, maker in image_corpus.LOADABLE.items():
        maker(root / ODD_CLASS / name)
    (root / "empty class").mkdir()
    (root / BAD_CLASS / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "__MACOSX" / BAD_CLASS).mkdir(parents=True)
    (root / "__MACOSX" / BAD_CLASS / "._000.png").write_bytes(b"\0\5\26\7 AppleDouble")
    os.symlink(".", root / BAD_CLASS / "loop")  # circle/loop/loop/loop/...
    return root


def test_dataset_of_the_bad_image_corpus(jobs_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITS_MAX_IMAGE_PIXELS", raising=False)
    root = make_corpus(tmp_path / "corpus")

    code, out, err = run_cli("dataset", "create", "--name", "corpus", "--folder", root, "--width", 16,
                             "--height", 16, "--seed", 1, "--wait", "--json")
    assert code == 0, err + out
    summary = json.loads(out)
    assert summary["status"] == "Done", (jobs_dir / summary["id"] / "log.txt").read_text()
    job_dir = jobs_dir / summary["id"]
    stats = json.loads((job_dir / "stats.json").read_text())

    assert stats["labels"] == sorted(GOOD)
    good_and_odd = 3 * 4 + len(image_corpus.LOADABLE)
    assert sum(stats["totals"].values()) == good_and_odd
    skipped = {os.path.relpath(s["path"], root): s["reason"] for s in stats["skipped_files"]}
    for name, (_, reason) in image_corpus.SKIPPED.items():
        assert reason in skipped.pop(f"{BAD_CLASS}/{name}")
    assert "symbolic link loop" in skipped.pop(f"{BAD_CLASS}/loop")
    assert skipped == {}  # nothing readable skipped, hidden files and __MACOSX ignored silently
    assert [c["class"] for c in stats["skipped_classes"]] == ["empty class"]
    assert "no images" in stats["skipped_classes"][0]["reason"]
    assert ".DS_Store" not in json.dumps(stats) and "__MACOSX" not in json.dumps(stats)

    log = (job_dir / "log.txt").read_text()
    peak = re.search(r"peak memory: worker (\d+) MiB", log)
    assert peak, log
    assert int(peak.group(1)) < WORKER_MEMORY_MIB
