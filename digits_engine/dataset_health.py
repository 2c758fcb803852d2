"""A dataset's health report, from its stats.json and its record index: files
skipped and why, exact duplicate images within a split and across splits (a
val or test image identical to a training image inflates its results), classes
with fewer training images than a threshold, grayscale sources mixed with
colour ones, and photos turned upright by their EXIF orientation.

`issues` lists them one row per file (split, file, issue, detail), the rows of
the CSV a person downloads; `summary` counts them.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from . import record_index
from .source_facts import is_gray, mode_name

DEFAULT_THRESHOLD = 10
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
COLUMNS = ("split", "file", "issue", "detail")


def records(job_dir: Path) -> pd.DataFrame:
    """Every record's split, position, name, mode, EXIF flag and pixel hash, in train/val/test order."""
    frames = []
    for split in record_index.splits(job_dir):
        table = record_index.read_columns(job_dir, split, ("position", "name", "mode", "exif_rotated", "hash"))
        frames.append(table.to_pandas().assign(split=split))
    if not frames:
        return pd.DataFrame(columns=["position", "name", "mode", "exif_rotated", "hash", "split"])
    return pd.concat(frames, ignore_index=True)


def duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """The records whose pixels equal an earlier record's: `leak` when that one is in an earlier split
    (train before val before test), with the name (and split) of the first record that has those pixels."""
    order = frame["split"].map(SPLIT_ORDER)
    first_split = order.groupby(frame["hash"]).transform("min")
    leak = order > first_split
    repeated = frame.duplicated(["hash", "split"]) & ~leak
    first = frame.drop_duplicates("hash").set_index("hash")
    first_in_split = frame.drop_duplicates(["hash", "split"])[["hash", "split", "name"]]
    out = frame[leak | repeated].assign(leak=leak[leak | repeated])
    out = out.merge(first_in_split.rename(columns={"name": "first_in_split"}), on=["hash", "split"], how="left")
    out["same_as"] = np.where(out["leak"], out["hash"].map(first["name"]), out["first_in_split"])
    out["same_as_split"] = np.where(out["leak"], out["hash"].map(first["split"]), out["split"])
    return out


def classes_below(stats: dict, threshold: int) -> list[dict]:
    """The classes with fewer than `threshold` training images (for masks: training images holding them)."""
    train = stats.get("counts", {}).get("train", {})
    return [{"class": label, "train": train.get(label, 0)} for label in stats.get("labels", [])
            if train.get(label, 0) < threshold]


def _rows(frame: pd.DataFrame, issue: str, detail) -> pd.DataFrame:
    """Issue rows for these records (`detail`: one text, or one per record)."""
    return pd.DataFrame({"split": frame["split"], "file": frame["name"], "issue": issue, "detail": detail},
                        columns=list(COLUMNS))


def _mode_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The sources of the less common kind when grayscale and colour sources are mixed."""
    gray = frame["mode"].map(is_gray).astype(bool)
    if gray.all() or not gray.any():
        return _rows(frame.iloc[:0], "mixed modes", "")
    gray_is_fewer = gray.sum() <= (~gray).sum()
    minority = gray if gray_is_fewer else ~gray
    majority = "colour" if gray_is_fewer else "grayscale"
    found = frame[minority]
    return _rows(found, "mixed modes", found["mode"].map(mode_name) + f" source among {int((~minority).sum())} "
                 f"{majority} ones")


def _duplicate_rows(dups: pd.DataFrame) -> pd.DataFrame:
    detail = "same pixels as " + dups["same_as_split"] + " image " + dups["same_as"]
    detail = detail.where(~dups["leak"], detail + ": " + dups["split"] + " results would be inflated")
    issue = dups["leak"].map({True: "duplicate across splits", False: "duplicate"})
    return _rows(dups, "", detail).assign(issue=issue)


def report(job_dir: Path, stats: dict, threshold: int = DEFAULT_THRESHOLD) -> tuple[dict, pd.DataFrame]:
    """(summary, issues), reading the record index once."""
    frame = records(job_dir)
    dups = duplicates(frame)
    return _summary(job_dir, frame, dups, stats, threshold), _issues(frame, dups, stats, threshold)


def issues(job_dir: Path, stats: dict, threshold: int = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Every issue, one row per file (class-wide issues: one row per class): split, file, issue, detail."""
    return report(job_dir, stats, threshold)[1]


def summary(job_dir: Path, stats: dict, threshold: int = DEFAULT_THRESHOLD) -> dict:
    """The health report in numbers (what `digits dataset show` prints and stats.json keeps)."""
    frame = records(job_dir)
    return _summary(job_dir, frame, duplicates(frame), stats, threshold)


def _issues(frame: pd.DataFrame, dups: pd.DataFrame, stats: dict, threshold: int) -> pd.DataFrame:
    rows = [{"split": "", "file": s["path"], "issue": "skipped", "detail": s["reason"]}
            for s in stats.get("skipped_files", [])]
    rows += [{"split": "", "file": "", "issue": "class left out", "detail": f"{c['class']}: {c['reason']}"}
             for c in stats.get("skipped_classes", [])]
    rows += [{"split": "train", "file": "", "issue": "few images",
              "detail": f"class {c['class']!r} has {c['train']} training image(s), fewer than {threshold}"}
             for c in classes_below(stats, threshold)]
    exif = frame[frame["exif_rotated"].astype(bool)]
    found = [_duplicate_rows(dups), _mode_rows(frame), _rows(exif, "EXIF-rotated", "its EXIF orientation was "
                                                                              "applied: stored upright")]
    parts = [part for part in (pd.DataFrame(rows, columns=list(COLUMNS)), *found) if len(part)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMNS))


def _summary(job_dir: Path, frame: pd.DataFrame, dups: pd.DataFrame, stats: dict, threshold: int) -> dict:
    gray = frame["mode"].map(is_gray).astype(bool)
    leaks = int(dups["leak"].sum()) if len(dups) else 0
    return {
        "indexed": bool(record_index.splits(job_dir)),
        "skipped_files": len(stats.get("skipped_files", [])),
        "duplicates": len(dups) - leaks,
        "cross_split_duplicates": leaks,
        "threshold": threshold,
        "classes_below_threshold": classes_below(stats, threshold),
        "modes": {str(k): int(v) for k, v in frame["mode"].map(mode_name).value_counts().items()},
        "mixed_modes": bool(gray.any() and not gray.all()),
        "exif_rotated": int(frame["exif_rotated"].astype(bool).sum()),
    }
