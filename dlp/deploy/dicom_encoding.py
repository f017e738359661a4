"""Write a DICOM SEG's per-frame functional groups without pydicom's per-element cost.

A SEG holds one Per-frame Functional Groups item per frame, ~27 small elements each;
pydicom's general writer spends ~60 µs on every element (a buffer, checks, charset
look-ups), 1.4 ms a frame: half of building and writing the whole SEG.  The items are
plain (UIDs, codes, positions, indices), so :func:`encode_items` encodes them here in
Explicit VR Little Endian, byte for byte as pydicom would (tests compare the files),
and :func:`save_with_encoded_sequences` lets pydicom write the rest around them (the
same for the SEG's other sequences, such as the list of its source images).  An
element it does not cover (another VR, a non-ASCII text, an over-long value) leaves
its sequence to pydicom.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_ITEM_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_UNDEFINED = 0xFFFFFFFF
#: VRs whose Explicit VR length field is 32-bit (after two reserved bytes).
_LONG_LENGTH = frozenset({"OB", "OD", "OF", "OL", "OW", "OV", "SQ", "UC", "UN", "UR",
                          "UT", "SV", "UV"})
_STRINGS = frozenset({"AE", "AS", "CS", "UR"})  # ASCII by definition
_TEXTS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT"})  # ASCII only here
_NUMBER_STRINGS = frozenset({"DS", "IS"})
_BINARY = {"US": "H", "UL": "L", "SS": "h", "SL": "l", "FL": "f", "FD": "d"}


class _Unsupported(Exception):
    """An element this encoder leaves to pydicom."""


def _is_multi(value: Any) -> bool:
    from pydicom.multival import MultiValue

    return isinstance(value, (MultiValue, list, tuple))


def _ascii(text: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise _Unsupported from None


def _value_bytes(vr: str, value: Any) -> bytes:
    if value is None or (isinstance(value, str) and value == ""):
        return b""
    if vr == "UI" or vr in _STRINGS or vr in _TEXTS:
        if _is_multi(value):
            value = "\\".join(value)
        if not isinstance(value, str):
            raise _Unsupported
        raw = _ascii(value)
        return raw + (b"\0" if vr == "UI" else b" ") if len(raw) % 2 else raw
    if vr in _NUMBER_STRINGS:
        values = value if _is_multi(value) else [value]
        text = "\\".join(v.original_string if hasattr(v, "original_string") else str(v)
                         for v in values)
        raw = _ascii(text)
        return raw + b" " if len(raw) % 2 else raw
    code = _BINARY.get(vr)
    if code is None:
        raise _Unsupported
    if isinstance(value, (list, tuple)) or _is_multi(value):
        return struct.pack(f"<{len(value)}{code}", *value)
    return struct.pack(f"<{code}", value)


def _element(tag: int, vr: str, value: bytes, undefined: bool = False) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_LENGTH:
        if undefined:
            return head + struct.pack("<HI", 0, _UNDEFINED) + value + _SEQUENCE_DELIMITER
        return head + struct.pack("<HI", 0, len(value)) + value
    if len(value) > 0xFFFF:
        raise _Unsupported  # pydicom would write it as UN, with a warning
    return head + struct.pack("<H", len(value)) + value


def _dataset(ds: Any) -> bytes:
    parts = []
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths: pydicom leaves them out too
        elem = ds.get_item(tag)
        if getattr(elem, "is_raw", False) or not isinstance(elem.VR, str):
            raise _Unsupported
        vr = str(elem.VR)
        if vr == "SQ":
            value = _items(elem.value)
            parts.append(_element(int(tag), vr, value, bool(elem.is_undefined_length)))
        else:
            parts.append(_element(int(tag), vr, _value_bytes(vr, elem.value)))
    return b"".join(parts)


def _items(items: Iterable[Any]) -> bytes:
    parts = []
    for item in items:
        body = _dataset(item)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts.append(_ITEM + struct.pack("<I", _UNDEFINED) + body + _ITEM_DELIMITER)
        else:
            parts.append(_ITEM + struct.pack("<I", len(body)) + body)
    return b"".join(parts)


def encode_items(items: Sequence[Any]) -> bytes | None:
    """The value of a sequence of ``items`` in Explicit VR Little Endian, or None when an
    element is beyond what this encoder covers."""
    try:
        return _items(items)
    except _Unsupported:
        return None


def save_with_encoded_sequences(ds: Any, path: str | os.PathLike[str] | Any) -> int:
    """``ds.save_as(path)`` with its top-level sequences encoded by :func:`encode_items`.

    Sequences holding an element this encoder does not cover are left to pydicom, as
    is the whole data set in a transfer syntax other than Explicit VR Little Endian.
    Only ASCII text is encoded here, the same in every character set a SEG may
    declare.  Returns how many sequences were encoded here; ``ds`` is unchanged
    afterwards.
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.filewriter import correct_ambiguous_vr
    from pydicom.uid import ExplicitVRLittleEndian

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    encoded: dict[int, tuple[Any, bytes]] = {}
    if syntax == ExplicitVRLittleEndian:
        for tag in list(ds.keys()):
            elem = ds.get_item(tag)
            if not getattr(elem, "is_raw", False) and elem.VR == "SQ":
                value = encode_items(elem.value)
                if value is not None:
                    encoded[int(tag)] = (elem, value)
    if not encoded:
        ds.save_as(path)
        return 0
    saved_encoding = (ds._read_implicit, ds._read_little, ds._read_charset)
    for tag in encoded:
        del ds[tag]
    try:
        # What pydicom's writer does first, done here: told that the data set already
        # is in the file's encoding, the writer then takes raw elements as they are.
        correct_ambiguous_vr(ds, True)
        for tag, (elem, value) in encoded.items():
            length = _UNDEFINED if elem.is_undefined_length else len(value)
            ds[tag] = RawDataElement(tag, "SQ", length, value, 0, False, True)
        ds.set_original_encoding(False, True, ds._character_set)
        ds.save_as(path)
    finally:
        for tag, (elem, _) in encoded.items():
            ds[tag] = elem
        ds._read_implicit, ds._read_little, ds._read_charset = saved_encoding
    return len(encoded)
