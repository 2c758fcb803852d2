"""The record index: what ingest writes about each record, read back page by
page, with a page's cost bounded by the page (not the split)."""
import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

from digits_engine import dataset_job, record_index


def info(i: int, label=None, classes=None) -> dict:
    label = i % 3 if label is None else label
    return {"label": label, "classes": [label] if classes is None else classes, "name": f"/data/c{label}/{i:06d}.png",
            "width": 10 + i % 7, "height": 20, "mode": "RGB" if i % 2 else "L", "exif_rotated": i == 5,
            "hash": hashlib.blake2b(str(i).encode(), digest_size=16).digest()}


def write(job_dir, split: str, n: int, **kw) -> None:
    writer = record_index.Writer(job_dir, split)
    for i in range(n):
        writer.add(info(i, **kw))
    writer.close()


def test_round_trip(tmp_path):
    write(tmp_path, "train", 50)
    assert record_index.splits(tmp_path) == ["train"]
    assert record_index.count(tmp_path, "train") == 50
    rows = record_index.read_page(tmp_path, "train", 10, 5)
    assert [r["position"] for r in rows] == [10, 11, 12, 13, 14]
    assert rows[0] == {"position": 10, "label": 1, "classes": [1], "name": "/data/c1/000010.png", "width": 13,
                       "height": 20, "mode": "L", "exif_rotated": False}
    every = record_index.read_columns(tmp_path, "train", ("hash", "exif_rotated")).to_pydict()
    assert every["hash"][7] == info(7)["hash"]
    assert every["exif_rotated"].index(True) == 5


def test_a_failed_or_aborted_dataset_removes_its_index():
    assert record_index.FOLDER in dataset_job.OUTPUTS


def test_class_pages_hold_only_that_class_in_lmdb_order(tmp_path):
    write(tmp_path, "val", 50)
    assert [record_index.count(tmp_path, "val", c) for c in range(3)] == [17, 17, 16]
    assert record_index.count(tmp_path, "val", 7) == 0
    rows = record_index.read_page(tmp_path, "val", 4, 6, label=2)
    assert [r["position"] for r in rows] == [14, 17, 20, 23, 26, 29]
    assert {r["label"] for r in rows} == {2}
    assert [r["position"] for r in record_index.read_page(tmp_path, "val", 15, 6, label=2)] == [47]
    assert record_index.read_page(tmp_path, "val", 100, 6, label=2) == []
    assert record_index.read_page(tmp_path, "val", 0, 6, label=9) == []


def test_segmentation_samples_are_listed_under_every_class_their_mask_holds(tmp_path):
    writer = record_index.Writer(tmp_path, "train")
    for i, classes in enumerate(([0, 1], [0], [0, 2], [0, 1, 2])):
        writer.add({**info(i), "label": np.zeros((4, 4, 1), np.uint8), "classes": classes})
    writer.close()
    assert [record_index.count(tmp_path, "train", c) for c in range(3)] == [4, 2, 2]
    assert [r["position"] for r in record_index.read_page(tmp_path, "train", 0, 10, label=1)] == [0, 3]
    assert record_index.read_page(tmp_path, "train", 3, 1)[0]["label"] == -1
    assert record_index.read_page(tmp_path, "train", 3, 1)[0]["classes"] == [0, 1, 2]


def test_an_empty_split_reads_as_empty(tmp_path):
    write(tmp_path, "test", 0)
    assert record_index.count(tmp_path, "test") == 0
    assert record_index.count(tmp_path, "test", 0) == 0
    assert record_index.read_page(tmp_path, "test", 0, 10) == []


@pytest.fixture(scope="module")
def big_index(tmp_path_factory):
    """100,000 rows, as a large dataset's index would hold."""
    job_dir = tmp_path_factory.mktemp("big")
    write(job_dir, "train", 100_000)
    return job_dir


def spy_row_groups(monkeypatch) -> list:
    read = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        read.extend(row_groups)
        return original(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("a page read the whole table"))
    return read


def test_reading_page_k_reads_only_the_row_groups_holding_it(big_index, monkeypatch):
    read = spy_row_groups(monkeypatch)
    rows = record_index.read_page(big_index, "train", 70_000, 48)
    assert [r["position"] for r in rows] == list(range(70_000, 70_048))
    assert rows[5]["name"] == info(70_005)["name"]
    assert read == [70_000 // record_index.ROW_GROUP]


def test_a_class_page_of_a_large_split_reads_a_slice_of_its_positions(big_index, monkeypatch):
    read = spy_row_groups(monkeypatch)
    loaded = []
    original_load = np.load

    def load(path, *args, **kwargs):
        loaded.append((str(path).rsplit("/", 1)[-1], kwargs.get("mmap_mode")))
        return original_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", load)
    rows = record_index.read_page(big_index, "train", 20_000, 24, label=1)
    assert [r["position"] for r in rows] == [3 * k + 1 for k in range(20_000, 20_024)]
    assert all(r["label"] == 1 for r in rows)
    assert set(read) == {p // record_index.ROW_GROUP for p in (60_001, 60_070)}
    assert ("train.by_class.npy", "r") in loaded  # memory-mapped: only the slice is read
