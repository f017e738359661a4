"""Prototxt text I/O: the corpus round-trips, every schema field is exercised, errors point."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message

from dlp.errors import DLPError, InputError
from dlp.net import prototxt
from dlp.net.prototxt import (
    PrototxtError,
    has_extensions,
    net_to_text,
    parse_net_text,
    parse_solver_text,
    parse_text,
    read_net,
    read_solver,
    solver_to_text,
    strip_extensions,
    write_net,
    write_solver,
)
from dlp.proto import caffe_pb2

CORPUS = Path(__file__).parent / "corpus"
NET_FILES = sorted(p for p in CORPUS.glob("*.prototxt") if not p.name.startswith("solver"))
SOLVER_FILES = sorted(CORPUS.glob("solver*.prototxt"))
NETLIB = Path(__file__).resolve().parents[2] / "netlib"
NETLIB_FILES = sorted(NETLIB.glob("*/*.prototxt"))


def _message_type(path: Path) -> type[Message]:
    if path.name.startswith("solver"):
        return caffe_pb2.SolverParameter
    return caffe_pb2.NetParameter


def _raw(path: Path) -> Message:
    return parse_text(path.read_text(), _message_type(path), str(path))


def _reachable_fields(root: descriptor.Descriptor) -> set[tuple[str, str]]:
    seen: set[str] = set()
    fields: set[tuple[str, str]] = set()
    pending = [root]
    while pending:
        message = pending.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            fields.add((message.name, field.name))
            if field.message_type is not None:
                pending.append(field.message_type)
    return fields


def _set_fields(message: Message, out: set[tuple[str, str]]) -> None:
    for field, value in message.ListFields():
        out.add((message.DESCRIPTOR.name, field.name))
        if field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                _set_fields(item, out)


def test_corpus_exercises_every_field_of_the_schema() -> None:
    """Every field of every message reachable from a net or a solver appears in the corpus."""
    used: set[tuple[str, str]] = set()
    for path in NET_FILES + SOLVER_FILES:
        _set_fields(_raw(path), used)
    wanted = (_reachable_fields(caffe_pb2.NetParameter.DESCRIPTOR)
              | _reachable_fields(caffe_pb2.SolverParameter.DESCRIPTOR))
    missing = sorted(wanted - used)
    assert not missing, f"fields no corpus file sets: {missing}"


@pytest.mark.parametrize("path", NET_FILES + SOLVER_FILES + NETLIB_FILES,
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_round_trips_through_text(path: Path) -> None:
    original = _raw(path)
    text = prototxt.message_to_text(original)
    again = parse_text(text, _message_type(path), "<round-trip>")
    assert again == original
    assert prototxt.message_to_text(again) == text


@pytest.mark.parametrize("path", NET_FILES + SOLVER_FILES, ids=lambda p: p.name)
def test_corpus_round_trips_through_binary(path: Path) -> None:
    original = _raw(path)
    wire = original.SerializeToString()
    again = _message_type(path).FromString(wire)
    assert again == original
    assert again.SerializeToString() == wire


@pytest.mark.parametrize("path", NET_FILES, ids=lambda p: p.name)
def test_read_net_gives_current_format_that_round_trips(path: Path, tmp_path: Path) -> None:
    net = read_net(path)
    assert len(net.layers) == 0, "V0/V1 layers must be upgraded on read"
    assert not net.input and not net.input_dim and not net.input_shape
    assert all(layer.type for layer in net.layer if layer.name != "unset")
    out = tmp_path / "net.prototxt"
    write_net(net, out)
    assert read_net(out) == net


@pytest.mark.parametrize("path", SOLVER_FILES, ids=lambda p: p.name)
def test_read_solver_round_trips(path: Path, tmp_path: Path) -> None:
    solver = read_solver(path)
    assert not solver.HasField("solver_type")
    out = tmp_path / "solver.prototxt"
    write_solver(solver, out)
    assert read_solver(out) == solver
    assert parse_solver_text(solver_to_text(solver)) == solver


def test_net_text_reads_like_caffe_writes_it() -> None:
    net = parse_net_text('name: "n" layer { name: "a" type: "ReLU" bottom: "x" top: "x" }')
    assert net_to_text(net) == (
        'name: "n"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom: "x"\n  top: "x"\n}\n')


def test_write_net_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "net.prototxt"
    out.write_text("old content")
    net = parse_net_text('name: "new"')

    def explode(_net: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(prototxt, "net_to_text", explode)
    with pytest.raises(RuntimeError):
        write_net(net, out)
    assert out.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["net.prototxt"]


# ---------------------------------------------------------------------------
# Bad input: one line, file:line:col, and a useful hint


def _error_for(tmp_path: Path, text: str) -> PrototxtError:
    path = tmp_path / "bad.prototxt"
    path.write_text(text)
    with pytest.raises(PrototxtError) as info:
        read_net(path)
    error = info.value
    assert isinstance(error, DLPError)
    assert "\n" not in str(error)
    assert str(error).startswith(f"{path}:{error.line}:{error.column}: ")
    return error


def test_missing_brace_names_the_unclosed_block(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'name: "n"\nlayer {\n  name: "a"\n  type: "ReLU"\n')
    assert error.line == 4
    assert "line 2" in error.message and "never closed" in error.message


def test_wrong_value_type_names_the_field(tmp_path: Path) -> None:
    text = 'layer {\n  name: "c"\n  convolution_param {\n    num_output: 3.5\n  }\n}\n'
    error = _error_for(tmp_path, text)
    assert (error.line, error.column) == (4, 17)
    assert 'field "num_output"' in error.message and "integer" in error.message


def test_unknown_field_suggests_the_closest(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer {\n  name: "a"\n  botom: "x"\n}\n')
    assert (error.line, error.column) == (3, 3)
    assert error.message == 'LayerParameter has no field "botom"; did you mean "bottom"?'


def test_layer_field_outside_layer_is_explained(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'name: "n"\ntop: "x"\n')
    assert error.line == 2
    assert "inside a layer" in error.message


def test_unknown_enum_lists_allowed_values(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer {\n  pooling_param { pool: MAXIMUM }\n}\n')
    assert error.line == 2
    assert "MAXIMUM" in error.message
    assert "MAX, AVE, STOCHASTIC" in error.message


def test_unknown_v1_layer_type_lists_allowed_values(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layers {\n  name: "c"\n  type: CONVOLUTON\n}\n')
    assert error.line == 3
    assert "CONVOLUTION" in error.message


def test_repeated_single_field_is_an_error(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer { name: "a" name: "b" }')
    assert 'field "name"' in error.message and "more than once" in error.message


def test_unterminated_string(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer {\n  bottom: "data\n}\n')
    assert error.line == 2 and "quote" in error.message


def test_binary_file_is_not_taken_for_text(tmp_path: Path) -> None:
    path = tmp_path / "weights.caffemodel"
    path.write_bytes(b"\n\x05hello\xff\xfe\x00")
    with pytest.raises(PrototxtError, match="not a text prototxt"):
        read_net(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_net(tmp_path / "absent.prototxt")
    with pytest.raises(InputError, match="is a directory"):
        read_solver(tmp_path)


def test_solver_errors_name_the_solver_file() -> None:
    with pytest.raises(PrototxtError) as info:
        parse_solver_text("base_lr: 0.1\nlr_polcy: \"step\"\n", "solver.prototxt")
    assert str(info.value).startswith("solver.prototxt:2:1: ")
    assert '"lr_policy"' in info.value.message


# ---------------------------------------------------------------------------
# DLP extensions


def test_strip_extensions_leaves_plain_caffe() -> None:
    net = read_net(CORPUS / "v2_common.prototxt")
    assert has_extensions(net)
    stripped = caffe_pb2.NetParameter()
    stripped.CopyFrom(net)
    assert strip_extensions(stripped) is stripped
    assert not has_extensions(stripped)
    text = net_to_text(stripped)
    for name in ("dice_param", "augmentation"):
        assert name not in text
    assert not stripped.layer[0].data_param.HasField("shuffle")
    # Everything standard is still there.
    assert [layer.name for layer in stripped.layer] == [layer.name for layer in net.layer]
    assert stripped.layer[0].transform_param.mirror is True
    assert stripped.layer[0].data_param.source == "train_db/features"

    solver = read_solver(CORPUS / "solver_files.prototxt")
    assert has_extensions(solver)
    strip_extensions(solver)
    assert not solver.HasField("best_metric") and solver.type == "Adam"


def test_extra_closing_brace(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer {\n  name: "a"\n}\n}\n')
    assert (error.line, error.column) == (4, 1)
    assert error.message == 'unexpected "}": no block is open here'


def test_missing_colon_names_the_field(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layer {\n  name "a"\n}\n')
    assert error.line == 2
    assert error.message == 'expected ":" after field "name"'


def test_quoted_enum_value_is_explained(tmp_path: Path) -> None:
    error = _error_for(tmp_path, 'layers {\n  type: "CONVOLUTION"\n}\n')
    assert error.message.endswith("(enum values take no quotes: write CONVOLUTION)")


def test_net_and_solver_files_swapped_are_recognised(tmp_path: Path) -> None:
    net_file = tmp_path / "train_val.prototxt"
    net_file.write_text('name: "n"\nlayer { name: "a" type: "ReLU" }\n')
    solver_file = tmp_path / "solver.prototxt"
    solver_file.write_text('net: "train_val.prototxt"\nbase_lr: 0.01\n')
    with pytest.raises(PrototxtError, match="looks like a net prototxt, not a solver"):
        read_solver(net_file)
    with pytest.raises(PrototxtError, match="looks like a solver prototxt, not a net") as info:
        read_net(solver_file)
    assert (info.value.line, info.value.column) == (1, 1)
