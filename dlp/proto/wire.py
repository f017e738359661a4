"""Protobuf wire-format primitives for the hot paths that bypass message objects.

Datums in an LMDB and the float blobs of a ``.caffemodel`` are decoded straight from
their bytes into numpy views (tens of megabytes, no per-value Python objects); these
are the pieces both need.  Everything else goes through ``caffe_pb2``.
"""

from __future__ import annotations


class WireError(ValueError):
    """Bytes that are not valid protobuf wire format (truncated or malformed)."""


def encode_varint(value: int) -> bytes:
    """``value`` as a base-128 varint; negatives sign-extended to 64 bits, as for int32."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    """The varint at ``buf[pos:]`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated (a varint runs past the end)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("malformed (a varint longer than 10 bytes)")


def skip_field(buf: bytes | bytearray, pos: int, wire_type: int) -> int:
    """The position after the value of a field of ``wire_type`` starting at ``pos``."""
    if wire_type == 0:
        return read_varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        length, pos = read_varint(buf, pos)
        return pos + length
    if wire_type == 5:
        return pos + 4
    raise WireError(f"malformed (unsupported wire type {wire_type})")
