"""LMDB record store and image records: the bytes a dataset job writes and training reads."""
import numpy as np
import pytest

from digits_engine import image_records, lmdb_store


def _record(i: int) -> bytes:
    return f"record-{i}".encode() * (i % 5 + 1)


def test_writer_batches_and_counts(tmp_path):
    db = tmp_path / "train"
    writer = lmdb_store.Writer(db, batch=4)
    for i in range(10):
        writer.append(_record(i))
    # two full transactions are committed, two records wait for the next one
    assert writer.count == 8 and len(writer.pending) == 2
    assert lmdb_store.count(db) == 8
    writer.close()
    assert lmdb_store.count(db) == 10
    assert lmdb_store.read_range(db, 0, 10) == [_record(i) for i in range(10)]
    assert lmdb_store.read_range(db, 3, 6) == [_record(3), _record(4), _record(5)]
    assert lmdb_store.read_indices(db, [9, 0, 4]) == [_record(9), _record(0), _record(4)]
    assert lmdb_store.read_indices(db, np.array([7, 7], np.int64)) == [_record(7), _record(7)]
    lmdb_store.close_env(db)


def test_keys_walk_in_insertion_order(tmp_path):
    db = tmp_path / "db"
    writer = lmdb_store.Writer(db, batch=256)
    for i in range(1200):  # past 1000: zero-padded keys keep numeric order
        writer.append(b"%d" % i)
    writer.close()
    env = lmdb_store.open_env(db)
    with env.begin() as txn:
        values = [int(v) for _, v in txn.cursor()]
    assert values == list(range(1200))
    assert lmdb_store.read_range(db, 998, 1002) == [b"998", b"999", b"1000", b"1001"]
    lmdb_store.close_env(db)


def test_one_environment_per_path(tmp_path):
    db = tmp_path / "db"
    writer = lmdb_store.Writer(db)
    writer.append(b"x")
    writer.close()
    assert lmdb_store.open_env(db) is lmdb_store.open_env(tmp_path / "." / "db")
    lmdb_store.close_env(db)


def _pixels(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth gradients plus a little noise: JPEG keeps them close
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 127 // max(h + w - 2, 1))], -1)
    pixels = np.clip(base[:, :, :c] + rng.integers(-3, 3, (h, w, c)), 0, 255)
    return pixels.astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("encoding", ["png", "none"])
def test_lossless_records_round_trip(encoding, channels):
    pixels = _pixels(12, 20, channels)
    record = image_records.make_record(pixels, 4, encoding)
    out, label = image_records.read_record(record)
    assert label == 4
    assert out.dtype == np.uint8 and out.shape == (12, 20, channels)
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_records_round_trip_approximately(channels):
    pixels = _pixels(32, 24, channels)
    record = image_records.make_record(pixels, 1, "jpg")
    out, label = image_records.read_record(record)
    assert label == 1 and out.shape == (32, 24, channels)
    error = np.abs(out.astype(int) - pixels.astype(int))
    assert error.mean() < 6, error.mean()
    assert not np.array_equal(out, np.zeros_like(out))


@pytest.mark.parametrize("encoding,magic", [("png", b"\x89PNG"), ("jpg", b"\xff\xd8"), ("none", None)])
def test_record_features(encoding, magic):
    from digits_engine import tf_example

    pixels = _pixels(8, 10, 3)
    features = tf_example.decode(image_records.make_record(pixels, 2, encoding))
    assert features["image/format"] == image_records.FORMATS[encoding]
    assert features["image/shape"] == [8, 10, 3]
    assert features["label"] == [2]
    if magic:
        assert features["image/encoded"].startswith(magic)
    else:
        assert features["image/encoded"] == pixels.tobytes()


def test_records_through_lmdb(tmp_path):
    db = tmp_path / "val"
    images = [_pixels(6, 6, 3, seed=i) for i in range(7)]
    writer = lmdb_store.Writer(db, batch=3)
    for i, pixels in enumerate(images):
        writer.append(image_records.make_record(pixels, i % 3, "png"))
    writer.close()
    assert lmdb_store.count(db) == 7
    for i, record in zip([6, 2], lmdb_store.read_indices(db, [6, 2])):
        pixels, label = image_records.read_record(record)
        np.testing.assert_array_equal(pixels, images[i])
        assert label == i % 3
    lmdb_store.close_env(db)
