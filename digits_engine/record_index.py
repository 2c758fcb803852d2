"""What a dataset knows about each of its records, written at ingest and read
page by page: index/<split>.parquet holds one row per record of the split's
LMDB (row i describes record i): its class, the classes its mask holds
(segmentation), its source's name, width, height and pixel mode, whether an
EXIF orientation was applied, and a hash of its decoded pixels.

index/<split>.by_class.npy lists the record positions grouped by class, and
index/<split>.class_starts.npy where each class's run begins, so that a page
of one class is a slice of a memory-mapped array. Reading a page costs the
page's rows (the row groups that hold them), never the whole split.
"""
from array import array
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FOLDER = "index"
ROW_GROUP = 1024
SCHEMA = pa.schema([
    ("position", pa.int64()),
    ("label", pa.int32()),  # the class id; -1 for a segmentation sample (its classes are in `classes`)
    ("classes", pa.list_(pa.int32())),
    ("name", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("mode", pa.string()),  # the source's PIL mode before conversion: L, RGB, RGBA, P, I;16, CMYK...
    ("exif_rotated", pa.bool_()),
    ("hash", pa.binary(16)),
])
PAGE_COLUMNS = ("position", "label", "classes", "name", "width", "height", "mode", "exif_rotated")


def table_path(job_dir: Path, split: str) -> Path:
    return Path(job_dir) / FOLDER / f"{split}.parquet"


def _class_files(job_dir: Path, split: str) -> tuple[Path, Path]:
    folder = Path(job_dir) / FOLDER
    return folder / f"{split}.by_class.npy", folder / f"{split}.class_starts.npy"


class Writer:
    """Streams one split's rows to its parquet file, a row group at a time; the class lists at close."""

    def __init__(self, job_dir: Path, split: str):
        self.job_dir, self.split = Path(job_dir), split
        table_path(job_dir, split).parent.mkdir(parents=True, exist_ok=True)
        self.out = pq.ParquetWriter(table_path(job_dir, split), SCHEMA)
        self.rows: list[dict] = []
        self.by_class: dict[int, array] = {}
        self.count = 0

    def add(self, info: dict) -> None:
        """One record's facts, in the order the records were written: label, classes, name, width, height,
        mode, exif_rotated, hash."""
        label = info["label"] if isinstance(info["label"], int) else -1
        classes = [int(c) for c in info["classes"]]
        self.rows.append({**{k: info[k] for k in SCHEMA.names[3:]}, "position": self.count, "label": label,
                          "classes": classes})
        for c in classes:
            self.by_class.setdefault(c, array("q")).append(self.count)
        self.count += 1
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.out.write_table(pa.Table.from_pylist(self.rows, schema=SCHEMA), row_group_size=ROW_GROUP)
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.out.close()
        top = max(self.by_class, default=-1)
        sizes = [len(self.by_class.get(c, ())) for c in range(top + 1)]
        by_class_path, starts_path = _class_files(self.job_dir, self.split)
        positions = [np.frombuffer(self.by_class[c], np.int64) for c in range(top + 1) if c in self.by_class]
        np.save(by_class_path, np.concatenate(positions) if positions else np.zeros(0, np.int64))
        np.save(starts_path, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))


def splits(job_dir: Path) -> list[str]:
    """The splits that have an index, in train/val/test order."""
    return [s for s in ("train", "val", "test") if table_path(job_dir, s).exists()]


def count(job_dir: Path, split: str, label: int | None = None) -> int:
    """Records in the split, or those of class `label` (for masks: those holding it)."""
    if label is None:
        return pq.ParquetFile(table_path(job_dir, split)).metadata.num_rows
    starts = np.load(_class_files(job_dir, split)[1])
    return int(starts[label + 1] - starts[label]) if 0 <= label < len(starts) - 1 else 0


def page_positions(job_dir: Path, split: str, offset: int, size: int, label: int | None = None) -> np.ndarray:
    """The LMDB positions of records offset..offset+size-1 of the split, or of its class `label`."""
    offset, size = max(int(offset), 0), max(int(size), 0)
    if label is None:
        return np.arange(offset, min(offset + size, count(job_dir, split)), dtype=np.int64)
    by_class_path, starts_path = _class_files(job_dir, split)
    starts = np.load(starts_path)
    if not 0 <= label < len(starts) - 1:
        return np.zeros(0, np.int64)
    begin, end = int(starts[label]), int(starts[label + 1])
    by_class = np.load(by_class_path, mmap_mode="r")
    return np.array(by_class[min(begin + offset, end):min(begin + offset + size, end)], dtype=np.int64)


def read_rows(job_dir: Path, split: str, positions, columns=PAGE_COLUMNS) -> list[dict]:
    """The rows at these positions (in that order), reading only the row groups that hold them."""
    positions = np.asarray(positions, dtype=np.int64)
    if not len(positions):
        return []
    parquet = pq.ParquetFile(table_path(job_dir, split))
    sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.metadata.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = np.searchsorted(starts, positions, side="right") - 1
    wanted = sorted(set(groups.tolist()))
    table = parquet.read_row_groups(wanted, columns=list(columns))
    # where each wanted group's rows begin in `table`, which holds only those groups
    begins = dict(zip(wanted, np.cumsum([0] + [sizes[g] for g in wanted[:-1]]).tolist()))
    rows = [begins[g] + int(p - starts[g]) for g, p in zip(groups.tolist(), positions)]
    return table.take(pa.array(rows, pa.int64())).to_pylist()


def read_page(job_dir: Path, split: str, offset: int, size: int, label: int | None = None) -> list[dict]:
    """A page of the split's rows (or of class `label`'s), in LMDB order."""
    return read_rows(job_dir, split, page_positions(job_dir, split, offset, size, label))


def read_columns(job_dir: Path, split: str, columns) -> pa.Table:
    """Whole columns of a split (for statistics over every record: sizes, modes, hashes)."""
    return pq.read_table(table_path(job_dir, split), columns=list(columns))
