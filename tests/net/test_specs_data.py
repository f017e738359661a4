"""Data layers: Input, DummyData, and Data shapes read from the first Datum of an LMDB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from dlp.data.lmdb_io import DatumWriter
from dlp.net.specs import SampleSourceSpec, ShapeError, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def write_lmdb(path: Path, shape: tuple[int, ...], records: int = 2) -> Path:
    with DatumWriter(path) as writer:
        for index in range(records):
            writer.append(np.full(shape, index, dtype=np.uint8), label=index)
    return path


def test_input_gives_one_shape_to_every_top_or_one_per_top() -> None:
    spec = get_spec("Input")
    one = make_layer('name: "in" type: "Input" top: "a" top: "b" '
                     'input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }')
    assert spec.output_shapes(one, []) == [(1, 3, 8, 8)] * 2
    assert spec.key_params(one) == "1\u00d73\u00d78\u00d78"
    each = make_layer('name: "in" type: "Input" top: "a" top: "b" input_param { '
                      'shape { dim: 1 dim: 3 } shape { dim: 1 } }')
    assert spec.output_shapes(each, []) == [(1, 3), (1,)]
    bad = make_layer('name: "in" type: "Input" top: "a" top: "b" top: "c" input_param { '
                     'shape { dim: 1 } shape { dim: 2 } }')
    with pytest.raises(ShapeError, match=r"once per top \(3\); got 2"):
        spec.output_shapes(bad, [])
    zero = make_layer('name: "in" type: "Input" top: "a" input_param { shape { dim: 0 } }')
    with pytest.raises(ShapeError, match="not positive"):
        spec.output_shapes(zero, [])


def test_dummy_data_shape_and_legacy_dimensions() -> None:
    spec = get_spec("DummyData")
    modern = make_layer('name: "d" type: "DummyData" top: "x" top: "y" dummy_data_param { '
                        'shape { dim: 2 dim: 3 } shape { dim: 2 } }')
    assert spec.output_shapes(modern, []) == [(2, 3), (2,)]
    legacy = make_layer('name: "d" type: "DummyData" top: "x" top: "y" dummy_data_param { '
                        'num: 2 channels: 3 channels: 1 height: 4 width: 5 }')
    assert spec.output_shapes(legacy, []) == [(2, 3, 4, 5), (2, 1, 4, 5)]
    both = make_layer('name: "d" type: "DummyData" top: "x" dummy_data_param { num: 1 '
                      'shape { dim: 1 } }')
    with pytest.raises(ShapeError, match="not both"):
        spec.output_shapes(both, [])


def test_data_layer_reads_the_first_datum_and_applies_batch_and_crop(tmp_path: Path) -> None:
    db = write_lmdb(tmp_path / "train_db" / "features", (3, 12, 10))
    spec = get_spec("Data")
    assert isinstance(spec, SampleSourceSpec) and spec.is_data_source
    layer = make_layer(f'name: "data" type: "Data" top: "data" top: "label" data_param {{ '
                       f'source: "{db}" batch_size: 4 backend: LMDB }}')
    assert spec.output_shapes(layer, []) == [(4, 3, 12, 10), (4,)]
    layer.transform_param.crop_size = 8
    assert spec.output_shapes(layer, []) == [(4, 3, 8, 8), (4,)]
    assert spec.key_params(layer) == "batch 4 \u00b7 train_db/features"
    layer.transform_param.crop_size = 11
    with pytest.raises(ShapeError, match="crop_size 11 is larger than the 12\u00d710"):
        spec.output_shapes(layer, [])


def test_data_layer_relative_source_and_a_given_sample_shape(tmp_path: Path) -> None:
    write_lmdb(tmp_path / "db", (1, 6, 6))
    spec = get_spec("Data")
    layer = make_layer('name: "data" type: "Data" top: "data" data_param { source: "db" '
                       'batch_size: 2 }')
    assert spec.source_shapes(layer, spec.read_samples(layer, tmp_path)) == [(2, 1, 6, 6)]
    # a (N, C, H, W) sample also sets the batch; no file is read
    assert spec.source_shapes(layer, {"data": (5, 3, 7, 7)}) == [(5, 3, 7, 7)]


def test_data_layer_without_a_readable_source_says_what_to_do(tmp_path: Path) -> None:
    spec = get_spec("Data")
    missing = make_layer(f'name: "data" type: "Data" top: "data" data_param {{ '
                         f'source: "{tmp_path / "nowhere"}" batch_size: 1 }}')
    with pytest.raises(ShapeError, match=r"layer 'data' \(Data\).*does not exist.*--input-shape"):
        spec.output_shapes(missing, [])
    (tmp_path / "empty").mkdir()
    write_lmdb(tmp_path / "empty", (1, 2, 2), records=0)
    empty = make_layer(f'name: "data" type: "Data" top: "data" data_param {{ '
                       f'source: "{tmp_path / "empty"}" batch_size: 1 }}')
    with pytest.raises(ShapeError, match="empty"):
        spec.output_shapes(empty, [])


def test_file_readers_the_engine_cannot_run_are_marked() -> None:
    assert not get_spec("ImageData").engine_supported
    assert not get_spec("HDF5Data").engine_supported
    assert get_spec("Data").engine_supported
    image = make_layer('name: "img" type: "ImageData" top: "data" top: "label" '
                       'image_data_param { batch_size: 2 new_height: 5 new_width: 6 }')
    spec = get_spec("ImageData")
    assert spec.source_shapes(image, {"data": (3, 10, 10)}) == [(2, 3, 5, 6), (2,)]
    with pytest.raises(ShapeError, match=r"image_data_param\.source is empty"):
        spec.output_shapes(image, [])
    hdf5 = make_layer('name: "h" type: "HDF5Data" top: "data" top: "target" '
                      'hdf5_data_param { batch_size: 3 }')
    assert get_spec("HDF5Data").source_shapes(hdf5, {"data": (2, 4), "target": (1,)}) == [
        (3, 2, 4), (3, 1)]


def test_image_data_reads_the_first_listed_image(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("L", (7, 5)).save(tmp_path / "images" / "a b.png")
    (tmp_path / "list.txt").write_text("a b.png 3\nother.png 1\n", encoding="utf-8")
    spec = get_spec("ImageData")
    layer = make_layer(f'name: "img" type: "ImageData" top: "data" top: "label" '
                       f'image_data_param {{ source: "{tmp_path / "list.txt"}" batch_size: 2 '
                       f'root_folder: "{tmp_path / "images"}/" }}')
    assert spec.output_shapes(layer, []) == [(2, 3, 5, 7), (2,)]
    layer.image_data_param.is_color = False
    layer.image_data_param.new_height = 4
    layer.image_data_param.new_width = 6
    assert spec.output_shapes(layer, []) == [(2, 1, 4, 6), (2,)]
    layer.image_data_param.root_folder = str(tmp_path) + "/"
    with pytest.raises(ShapeError, match="cannot read the first image"):
        spec.output_shapes(layer, [])


def test_memory_data_shapes_come_from_its_parameters() -> None:
    spec = get_spec("MemoryData")
    layer = make_layer('name: "m" type: "MemoryData" top: "data" top: "label" '
                       'memory_data_param { batch_size: 8 channels: 1 height: 28 width: 28 }')
    assert not spec.engine_supported and spec.tops == (2, 2)
    assert spec.output_shapes(layer, []) == [(8, 1, 28, 28), (8,)]
    with pytest.raises(ShapeError, match="not positive"):
        spec.output_shapes(make_layer('name: "m" type: "MemoryData" top: "d" top: "l"'), [])
