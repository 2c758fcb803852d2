"""tf.train.Example records, encoded and decoded without importing TensorFlow.

Dataset workers and the UI must not pay TensorFlow's import (3.5 s, ~800 MB),
yet training wants records that `tf.io.parse_example` reads in-graph. The
Example message is small enough to write by hand (protobuf wire format):

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }      # entries: key = 1, value = 2
    Feature  { oneof { BytesList = 1; FloatList = 2; Int64List = 3; } }
    BytesList { repeated bytes value = 1; }  Int64List { repeated int64 value = 1 [packed]; }
    FloatList { repeated float value = 1 [packed]; }

Values are bytes, a list of ints, or a list of floats.
"""
import numbers
import struct

_BYTES, _FLOAT, _INT64 = 1, 2, 3


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement, like protobuf
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return _field(_BYTES, _field(1, bytes(value)))
    values = list(value)
    if values and not all(isinstance(v, numbers.Integral) for v in values):  # [0, 0.5] or numpy floats: floats
        return _field(_FLOAT, _field(1, struct.pack(f"<{len(values)}f", *values)) if values else b"")
    return _field(_INT64, _field(1, b"".join(_varint(int(v)) for v in values)) if values else b"")


def encode(features: dict) -> bytes:
    """{"name": bytes | [int] | [float]} -> serialized tf.train.Example."""
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, _feature(v))) for k, v in features.items())
    return _field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, payload) for the length-delimited fields of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 2:
            size, pos = _read_varint(buf, pos)
            yield key >> 3, buf[pos:pos + size]
            pos += size
        elif wire == 0:
            value, pos = _read_varint(buf, pos)
            yield key >> 3, value
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a tf.train.Example")


def _decode_feature(buf: bytes):
    for kind, payload in _fields(buf):
        values = [v for _, v in _fields(payload)]
        if kind == _BYTES:
            return values[0] if len(values) == 1 else values
        if kind == _FLOAT:
            return list(struct.unpack(f"<{len(values[0]) // 4}f", values[0])) if values else []
        return _decode_int64s(values)
    return []


def _decode_int64s(values) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, int):  # unpacked
            out.append(v - (1 << 64) if v >= 1 << 63 else v)
            continue
        pos = 0
        while pos < len(v):
            n, pos = _read_varint(v, pos)
            out.append(n - (1 << 64) if n >= 1 << 63 else n)
    return out


def decode(record: bytes) -> dict:
    """Serialized tf.train.Example -> {"name": bytes | [int] | [float]}."""
    out = {}
    for _, features in _fields(record):
        for _, entry in _fields(features):
            parts = dict(_fields(entry))
            out[parts[1].decode()] = _decode_feature(parts.get(2, b""))
    return out
