"""Our hand-written tf.train.Example codec against TensorFlow's own."""
import os

import numpy as np
import pytest

from digits_engine import tf_example

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

INT64_EDGES = [0, 1, -1, 127, 128, 300, -300, 2**31, -(2**31), 2**63 - 1, -(2**63)]
FEATURES = {
    "image/encoded": b"\x89PNG\r\n\x1a\n\x00\xff binary",
    "empty": b"",
    "label": [7],
    "shape": [16, 16, 3],
    "edges": INT64_EDGES,
    "floats": [0.5, -1.25, 3.0, 1e-3],
}


def _assert_same(decoded: dict, expected: dict) -> None:
    assert set(decoded) == set(expected)
    for name, value in expected.items():
        if isinstance(value, list) and value and isinstance(value[0], float):
            np.testing.assert_allclose(decoded[name], value, rtol=1e-6)
            assert all(isinstance(v, float) for v in decoded[name])
        else:
            assert decoded[name] == value, name


def test_round_trip_bytes_ints_floats():
    _assert_same(tf_example.decode(tf_example.encode(FEATURES)), FEATURES)


def test_float32_values_round_trip_exactly():
    values = [0.5, -1.25, 2.0 ** 100, -7.0]  # exactly representable in float32
    assert tf_example.decode(tf_example.encode({"f": values}))["f"] == values


def test_floats_mixed_with_ints_stay_floats():
    # [0, 0.5, 1] is a float list (a box); it must not be truncated to int64 [0, 0, 1]
    decoded = tf_example.decode(tf_example.encode({"box": [0, 0.5, 1]}))
    assert decoded["box"] == [0.0, 0.5, 1.0]


def test_numpy_values():
    decoded = tf_example.decode(tf_example.encode({
        "f32": np.array([0.25, 1.5], np.float32), "i64": np.array([-3, 4], np.int64), "shape": np.array([2, 3]),
    }))
    assert decoded == {"f32": [0.25, 1.5], "i64": [-3, 4], "shape": [2, 3]}


def test_empty_lists():
    decoded = tf_example.decode(tf_example.encode({"nothing": []}))
    assert decoded == {"nothing": []}


def test_tensorflow_parses_our_records():
    record = tf_example.encode(FEATURES)
    parsed = tf.io.parse_single_example(record, {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "empty": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "edges": tf.io.FixedLenFeature([len(INT64_EDGES)], tf.int64),
        "floats": tf.io.FixedLenFeature([4], tf.float32),
    })
    assert parsed["image/encoded"].numpy() == FEATURES["image/encoded"]
    assert parsed["empty"].numpy() == b""
    assert int(parsed["label"]) == 7
    assert parsed["shape"].numpy().tolist() == [16, 16, 3]
    assert parsed["edges"].numpy().tolist() == INT64_EDGES
    np.testing.assert_allclose(parsed["floats"].numpy(), FEATURES["floats"], rtol=1e-6)


def test_tensorflow_proto_reads_our_records():
    example = tf.train.Example.FromString(tf_example.encode(FEATURES))
    feature = example.features.feature
    assert set(feature) == set(FEATURES)
    assert feature["image/encoded"].bytes_list.value == [FEATURES["image/encoded"]]
    assert list(feature["edges"].int64_list.value) == INT64_EDGES
    assert list(feature["shape"].int64_list.value) == [16, 16, 3]
    np.testing.assert_allclose(list(feature["floats"].float_list.value), FEATURES["floats"], rtol=1e-6)


def test_we_decode_tensorflow_records():
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x00\x01abc"])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
        "edges": tf.train.Feature(int64_list=tf.train.Int64List(value=INT64_EDGES)),
        "floats": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -2.75])),
        "names": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"bc"])),
    }))
    decoded = tf_example.decode(example.SerializeToString())
    assert decoded == {"image/encoded": b"\x00\x01abc", "label": [2], "edges": INT64_EDGES,
                       "floats": [0.5, -2.75], "names": [b"a", b"bc"]}


def test_byte_identical_to_tensorflow_for_one_feature():
    # With a single feature there is no map ordering to differ: the bytes must match exactly.
    for value, feature in (
        (b"xyz", tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"xyz"]))),
        ([5, -5], tf.train.Feature(int64_list=tf.train.Int64List(value=[5, -5]))),
        ([1.5], tf.train.Feature(float_list=tf.train.FloatList(value=[1.5]))),
    ):
        theirs = tf.train.Example(features=tf.train.Features(feature={"k": feature})).SerializeToString()
        assert tf_example.encode({"k": value}) == theirs


def test_unpacked_negative_int64_decodes_signed():
    # A proto2-style writer may send repeated int64 unpacked (wire type 0); parsers must accept it.
    int64_list = bytes([0x08]) + tf_example._varint(-5) + bytes([0x08]) + tf_example._varint(9)
    feature = tf_example._field(3, int64_list)
    entry = tf_example._field(1, b"n") + tf_example._field(2, feature)
    record = tf_example._field(1, tf_example._field(1, entry))
    assert list(tf.train.Example.FromString(record).features.feature["n"].int64_list.value) == [-5, 9]
    assert tf_example.decode(record) == {"n": [-5, 9]}
