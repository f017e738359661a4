"""The Net Library: every shipped entry parses, validates and has consistent metadata."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from dlp.net import library
from dlp.net.library import (
    LibraryError,
    builtin_netlib_dir,
    find_entry,
    list_entries,
    load_entry,
    read_entry,
    save_entry,
)
from dlp.net.prototxt import parse_net_text, parse_solver_text
from dlp.proto import caffe_pb2

EXPECTED = {"lenet", "alexnet", "fcn-alexnet", "fcn8s", "unet2d", "sunnybrook-fcn"}
ENTRIES = list_entries()
DATA_LAYER_TYPES = {"Data"}


def test_builtin_library_has_the_reference_architectures() -> None:
    assert builtin_netlib_dir().is_dir()
    assert {entry.name for entry in ENTRIES} == EXPECTED


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_parses_and_its_meta_matches_the_net(entry: library.LibraryEntry) -> None:
    net, solver = entry.load()
    assert net.layer and not net.layers
    assert solver.net == "train_val.prototxt"
    assert solver.base_lr > 0 and solver.max_iter > 0
    assert entry.meta["source"] and entry.description and entry.title

    data_layers = [layer for layer in net.layer if layer.type in DATA_LAYER_TYPES]
    assert {rule.phase for layer in data_layers for rule in layer.include} == {
        caffe_pb2.TRAIN, caffe_pb2.TEST}
    for layer in data_layers:
        source = layer.data_param.source
        assert not Path(source).is_absolute() and ".." not in Path(source).parts
        split = "train_db" if layer.include[0].phase == caffe_pb2.TRAIN else "val_db"
        folder = entry.dataset_sources[layer.top[0]]
        assert source == (f"{split}/{folder}" if folder else split), layer.name
        assert layer.data_param.backend == caffe_pb2.DataParameter.LMDB

    # The last scoring layer produces `classes` outputs.
    losses = [layer for layer in net.layer if layer.type == "SoftmaxWithLoss"]
    assert len(losses) == 1
    if entry.task == "segmentation":
        assert set(entry.dataset_sources) == {"data", "label"}
        assert any(layer.type == "Dice" for layer in net.layer)
        assert solver.best_metric == "dice"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_shapes_match_its_meta(entry: library.LibraryEntry) -> None:
    """Shape inference (dlp.net.shapes) of the TEST net gives the promised output."""
    from dlp.net.shapes import infer_shapes
    from dlp.net.validate import validate_net

    net, _ = entry.load()
    for phase in ("TRAIN", "TEST"):
        problems = [issue for issue in validate_net(net, phase) if issue.severity == "error"]
        assert not problems, problems
    channels, height, width = entry.input_shape
    data_shape = {"data": (channels, height, width), "label": (1, height, width)}
    shapes = infer_shapes(net, "TEST", data_shape=data_shape)
    assert not shapes.errors, [(info.name, info.error) for info in shapes.errors]
    loss = next(layer for layer in net.layer if layer.type == "SoftmaxWithLoss")
    score = shapes.blobs[loss.bottom[0]]
    if entry.task == "segmentation":
        assert score[1:] == (entry.classes, height, width)
    else:
        assert math.prod(score[1:]) == entry.classes


def test_load_entry_by_name() -> None:
    net, solver = load_entry("unet2d")
    assert net.name == "UNet2D"
    assert solver.type == "Adam"


def test_unknown_entry_suggests_the_closest() -> None:
    with pytest.raises(LibraryError, match="did you mean unet2d"):
        find_entry("unet")


def test_netlib_found_inside_a_pyinstaller_bundle(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = tmp_path / "netlib"
    source = builtin_netlib_dir() / "lenet"
    (bundled / "lenet").mkdir(parents=True)
    for file in source.iterdir():
        (bundled / "lenet" / file.name).write_bytes(file.read_bytes())
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert builtin_netlib_dir() == bundled
    assert [entry.name for entry in list_entries()] == ["lenet"]
    assert load_entry("lenet")[0].name == "LeNet"


def _write_entry(root: Path, name: str, meta: dict | str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "train_val.prototxt").write_text('name: "x"')
    (folder / "solver.prototxt").write_text('net: "train_val.prototxt"')
    (folder / "meta.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


GOOD_META = {"name": "mine", "title": "Mine", "description": "d", "task": "classification",
             "input": [1, 8, 8], "classes": 2, "source": "me"}


@pytest.mark.parametrize(("change", "message"), [
    ({"task": "detection"}, 'field "task" must be one of classification, segmentation'),
    ({"input": [1, 8]}, 'field "input" must be \\[C, H, W\\]'),
    ({"classes": 0}, 'field "classes" must be a positive integer'),
    ({"title": ""}, 'field "title" must be a non-empty string'),
    ({"name": "other"}, '"name" is \'other\' but the folder is \'mine\''),
    ({"task": "segmentation"}, 'needs "dataset_sources"'),
])
def test_bad_meta_is_named(tmp_path: Path, change: dict, message: str) -> None:
    folder = _write_entry(tmp_path, "mine", {**GOOD_META, **change})
    with pytest.raises(LibraryError, match=message) as info:
        read_entry(folder)
    assert str(info.value).startswith(str(folder / "meta.json"))


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    folder = _write_entry(tmp_path, "mine", '{"name": "mine",\n  "title": }')
    with pytest.raises(LibraryError, match=r"meta\.json:2:12: invalid JSON"):
        read_entry(folder)


def test_broken_user_entry_does_not_hide_the_others(tmp_path: Path) -> None:
    _write_entry(tmp_path, "broken", "{")
    _write_entry(tmp_path, "mine", GOOD_META)
    with pytest.raises(LibraryError):
        list_entries([tmp_path])
    errors: list[LibraryError] = []
    names = [entry.name for entry in list_entries([tmp_path, builtin_netlib_dir()],
                                                  errors=errors)]
    assert "mine" in names and "lenet" in names and "broken" not in names
    assert len(errors) == 1 and "broken" in str(errors[0])


def test_save_entry_round_trips(tmp_path: Path) -> None:
    net = parse_net_text('name: "tiny" layer { name: "in" type: "Input" top: "x" '
                         'input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }')
    solver = parse_solver_text('net: "train_val.prototxt" base_lr: 0.1 max_iter: 5')
    entry = save_entry(tmp_path / "nets" / "library", net, solver, GOOD_META)
    assert entry.name == "mine" and entry.path == tmp_path / "nets" / "library" / "mine"
    assert entry.load() == (net, solver)
    # The user's entries list together with the built-in ones; a user entry comes first.
    names = [e.name for e in list_entries([tmp_path / "nets" / "library",
                                           builtin_netlib_dir()])]
    assert "mine" in names and "unet2d" in names
    with pytest.raises(LibraryError, match="plain folder name"):
        save_entry(tmp_path, net, solver, {**GOOD_META, "name": "../escape"})
