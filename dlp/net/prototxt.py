"""Reading and writing Caffe prototxt (protobuf text format) with user-facing errors.

Parsing uses ``google.protobuf.text_format`` (the same grammar as Caffe's C++
``TextFormat``); its errors are turned into :class:`PrototxtError` with the file, line
and column and, for the usual slips, a hint: the closest field name for a misspelt
field, the allowed values for an unknown enum value, where an unclosed block opened.

Nets and solvers read through :func:`read_net` / :func:`read_solver` are upgraded the
way Caffe upgrades them on load (``dlp.net.upgrade``), so callers always see current
format (``layer`` with string types, ``Input`` layers, ``transform_param``).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import TypeVar

from google.protobuf import descriptor, descriptor_pool, text_format
from google.protobuf.message import Message

from dlp.errors import InputError
from dlp.fsutil import atomic_write_text
from dlp.proto import caffe_pb2

MessageT = TypeVar("MessageT", bound=Message)

# Field numbers from here up are DLP's own; BVLC Caffe does not know them.
EXTENSION_FIELD_START = 10000


class PrototxtError(InputError):
    """A prototxt file is malformed; ``str()`` is ``source:line:column: message``."""

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{source}:{line}:{column}: {message}")


# ---------------------------------------------------------------------------
# Parsing

_LOCATION_PREFIX = re.compile(r"^\d+:\d+ : ")
_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
_UNKNOWN_ENUM_NAME = re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.?$')
_UNKNOWN_ENUM_NUMBER = re.compile(r'Enum type "([\w.]+)" has no value with number (-?\d+)\.?$')
_DUPLICATE_FIELD = re.compile(r'Message type "([\w.]+)" should not have multiple "(\w+)" fields')
_FIELD_BEFORE_COLUMN = re.compile(r"(\w+)\s*:?\s*$")


def _short_name(full_name: str) -> str:
    return full_name.split(".", 1)[1] if full_name.startswith("caffe.") else full_name


def _closest(word: str, candidates: list[str]) -> list[str]:
    return difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)


def _pool() -> descriptor_pool.DescriptorPool:
    return caffe_pb2.DESCRIPTOR.pool


def _explain_unknown_field(message_name: str, field: str) -> str:
    try:
        message = _pool().FindMessageTypeByName(message_name)
    except KeyError:
        return f'{_short_name(message_name)} has no field "{field}"'
    names = [f.name for f in message.fields]
    text = f'{_short_name(message_name)} has no field "{field}"'
    close = _closest(field, names)
    if close:
        text += "; did you mean " + " or ".join(f'"{name}"' for name in close) + "?"
    elif (message_name == "caffe.NetParameter"
          and field in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name):
        text += " (it belongs inside a layer { ... } block)"
    elif (message_name == "caffe.NetParameter"
          and field in caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name):
        text += " (this looks like a solver prototxt, not a net)"
    elif (message_name == "caffe.SolverParameter"
          and field in caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name):
        text += " (this looks like a net prototxt, not a solver)"
    return text


def _explain_unknown_enum(enum_name: str, value: str) -> str:
    try:
        enum = _pool().FindEnumTypeByName(enum_name)
    except KeyError:
        return f"{_short_name(enum_name)} has no value {value}"
    allowed = [v.name for v in enum.values]
    text = (f"unknown value {value} for {_short_name(enum_name)}; "
            f"expected one of {', '.join(allowed)}")
    bare = value.strip("\"'")
    if bare != value and bare in allowed:
        return text + f" (enum values take no quotes: write {bare})"
    close = _closest(bare.upper(), allowed)
    if close:
        text += f" (did you mean {close[0]}?)"
    return text


def _unclosed_brace_line(text: str) -> int | None:
    """Line of the innermost ``{`` never closed (strings and comments skipped)."""
    stack: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        quote = ""
        escaped = False
        for char in line:
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char == "{":
                stack.append(number)
            elif char == "}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def _field_at(text: str, line: int, column: int) -> str | None:
    """The field name written just before ``line:column`` (for value errors)."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    match = _FIELD_BEFORE_COLUMN.search(lines[line - 1][: max(column - 1, 0)])
    return match.group(1) if match else None


def _explain(error: text_format.ParseError, text: str) -> str:
    raw = _LOCATION_PREFIX.sub("", str(error))
    line, column = error.GetLine() or 0, error.GetColumn() or 0
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        quoted = f"'{lines[line - 1]}': "
        if raw.startswith(quoted):
            raw = raw[len(quoted):]
    if match := _UNKNOWN_FIELD.search(raw):
        message_name, field = match.group(1), match.group(2)
        opened = _unclosed_brace_line("\n".join(lines[:max(line - 1, 0)]))
        if field in ("layer", "layers") and message_name != "caffe.NetParameter" and opened:
            # a net's next layer read as a field of the previous one: a "}" is missing
            return (f'missing "}}": the block opened at line {opened} is not closed before '
                    f'this "{field}"')
        return _explain_unknown_field(message_name, field)
    if match := _UNKNOWN_ENUM_NAME.search(raw):
        return _explain_unknown_enum(match.group(1), match.group(2))
    if match := _UNKNOWN_ENUM_NUMBER.search(raw):
        return _explain_unknown_enum(match.group(1), match.group(2))
    if match := _DUPLICATE_FIELD.search(raw):
        return (f'field "{match.group(2)}" of {_short_name(match.group(1))} is given more than '
                "once but takes a single value")
    if raw.startswith('Expected "}"') or raw.startswith("Expected identifier"):
        opened = _unclosed_brace_line(text)
        if opened is not None and (raw.startswith('Expected "}"') or line >= len(lines)):
            return f'missing "}}": the block opened at line {opened} is never closed'
    if raw.startswith("Expected identifier or number, got }"):
        return 'unexpected "}": no block is open here'
    field = _field_at(text, line, column)
    if raw.startswith('Expected ":"') and field:
        return f'expected ":" after field "{field}"'
    message = raw[0].lower() + raw[1:] if raw else "syntax error"
    if field and not raw.startswith('Expected "'):
        return f'field "{field}": {message}'
    return message


def parse_text(text: str, message_type: type[MessageT], source: str = "<string>") -> MessageT:
    """Parse protobuf text into a new ``message_type``; errors name ``source:line:column``."""
    message = message_type()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise PrototxtError(source, exc.GetLine() or 0, exc.GetColumn() or 0,
                            _explain(exc, text)) from None
    return message


def _read_text(path: str | os.PathLike[str]) -> str:
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a directory, expected a prototxt file") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PrototxtError(str(file), line, 0,
                            "not a text prototxt (binary data; a .caffemodel or "
                            ".binaryproto is read with the weights functions)") from None


# ---------------------------------------------------------------------------
# Nets


def parse_net_text(text: str, source: str = "<string>", *, upgrade: bool = True
                   ) -> caffe_pb2.NetParameter:
    """Parse a net prototxt; with ``upgrade`` (default) old formats are upgraded as Caffe does."""
    net = parse_text(text, caffe_pb2.NetParameter, source)
    if upgrade:
        from dlp.net.upgrade import upgrade_net

        net = upgrade_net(net, source=source)
    return net


def read_net(path: str | os.PathLike[str], *, upgrade: bool = True) -> caffe_pb2.NetParameter:
    """Read a net prototxt file (V0/V1 nets and deprecated inputs upgraded)."""
    return parse_net_text(_read_text(path), str(path), upgrade=upgrade)


def message_to_text(message: Message) -> str:
    """Protobuf text in Caffe's layout (two-space indents, fields in number order)."""
    return text_format.MessageToString(message, as_utf8=True)


def net_to_text(net: caffe_pb2.NetParameter) -> str:
    """Serialise a net as prototxt text (parses back to an equal message)."""
    return message_to_text(net)


def write_net(net: caffe_pb2.NetParameter, path: str | os.PathLike[str]) -> None:
    """Write a net as prototxt, atomically."""
    atomic_write_text(path, net_to_text(net))


# ---------------------------------------------------------------------------
# Solvers


def parse_solver_text(text: str, source: str = "<string>", *, upgrade: bool = True
                      ) -> caffe_pb2.SolverParameter:
    """Parse a solver prototxt; the deprecated ``solver_type`` enum becomes ``type``."""
    solver = parse_text(text, caffe_pb2.SolverParameter, source)
    if upgrade:
        from dlp.net.upgrade import upgrade_solver

        solver = upgrade_solver(solver, source=source)
    return solver


def read_solver(path: str | os.PathLike[str], *, upgrade: bool = True
                ) -> caffe_pb2.SolverParameter:
    """Read a solver prototxt file (upgraded as Caffe does)."""
    return parse_solver_text(_read_text(path), str(path), upgrade=upgrade)


def solver_to_text(solver: caffe_pb2.SolverParameter) -> str:
    """Serialise a solver as prototxt text."""
    return message_to_text(solver)


def write_solver(solver: caffe_pb2.SolverParameter, path: str | os.PathLike[str]) -> None:
    """Write a solver as prototxt, atomically."""
    atomic_write_text(path, solver_to_text(solver))


def layer_line(text: str, layer_name: str | None) -> int | None:
    """The 1-based line of layer ``layer_name``'s ``name:`` in prototxt ``text``.

    The net's own ``name:`` (outside any block) is skipped; None when not found.
    """
    if not layer_name:
        return None
    pattern = re.compile(r'(?<![\w.])name\s*:\s*"' + re.escape(layer_name) + '"')
    for match in pattern.finditer(text):
        before = text[:match.start()]
        if before.count("{") > before.count("}"):
            return before.count("\n") + 1
    return None


# ---------------------------------------------------------------------------
# DLP extensions


def has_extensions(message: Message) -> bool:
    """Whether any DLP extension field (number >= 10000) is set anywhere in ``message``."""
    for field, value in message.ListFields():
        if field.number >= EXTENSION_FIELD_START:
            return True
        if field.message_type is not None:
            values = value if _is_repeated(field) else [value]
            if any(has_extensions(item) for item in values):
                return True
    return False


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def strip_extensions(message: MessageT) -> MessageT:
    """Remove every DLP extension field, in place, so a real Caffe accepts the text.

    Returns ``message`` itself for chaining: ``net_to_text(strip_extensions(copy))``.
    """
    for field, value in message.ListFields():
        if field.number >= EXTENSION_FIELD_START:
            message.ClearField(field.name)
        elif field.message_type is not None:
            for item in value if _is_repeated(field) else [value]:
                strip_extensions(item)
    return message
