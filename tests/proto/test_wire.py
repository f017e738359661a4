"""The wire-format primitives agree with protobuf's own encoder and refuse bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlp.proto import caffe_pb2
from dlp.proto.wire import WireError, encode_varint, read_varint, skip_field


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_varints_match_protobufs_int32_encoding(value: int) -> None:
    datum = caffe_pb2.Datum(label=value)  # label = 5, int32: tag 0x28 then the varint
    wire = datum.SerializeToString()
    assert wire == b"\x28" + encode_varint(value)
    decoded, end = read_varint(wire, 1)
    assert end == len(wire)
    assert (decoded - (1 << 64) if decoded >= 1 << 63 else decoded) == value


def test_skip_field_steps_over_every_wire_type_of_a_real_message() -> None:
    message = caffe_pb2.FillerParameter(type="xavier", value=2.5, min=-1, sparse=-3)
    wire = message.SerializeToString()
    pos, numbers = 0, []
    while pos < len(wire):
        tag, pos = read_varint(wire, pos)
        numbers.append(tag >> 3)
        pos = skip_field(wire, pos, tag & 7)
    assert pos == len(wire)
    assert sorted(numbers) == sorted(f.number for f, _ in message.ListFields())


@pytest.mark.parametrize(("wire", "reason"), [
    (b"\x80\x80", "truncated"),
    (b"\xff" * 11, "longer than 10 bytes"),
])
def test_bad_varints_are_refused(wire: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        read_varint(wire, 0)


def test_an_unknown_wire_type_is_refused() -> None:
    with pytest.raises(WireError, match="unsupported wire type 7"):
        skip_field(b"\x00", 0, 7)
