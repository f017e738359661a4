"""Source layers: Input, DummyData and LMDB Data (DIGITS features + labels read in
lock-step, Caffe's transform, paired augmentation, shuffle, prefetch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dlp.data.lmdb_io import DatumWriter, write_mean_binaryproto
from dlp.engine.net import Net, NetInputError
from dlp.errors import DLPError
from dlp.net.prototxt import parse_net_text
from tests.engine.conftest import net_with_inputs

RECORDS = 6


def _label_map(index: int, size: int = 8) -> np.ndarray:
    label = np.zeros((1, size, size), np.uint8)
    label[0, index % 4: index % 4 + 3, 1:4 + index % 3] = 1  # asymmetric blobs
    return label


@pytest.fixture
def digits_db(tmp_path: Path) -> Path:
    """train_db/features (uint8 images = 100*label + index) and train_db/labels."""
    root = tmp_path / "train_db"
    with DatumWriter(root / "features") as features, DatumWriter(root / "labels") as labels:
        for i in range(RECORDS):
            label = _label_map(i)
            features.put(i, (label * 100 + i).astype(np.uint8), label=i)
            labels.put(i, label)
    return root


def data_net(root: Path, features_transform: str = "", labels_transform: str = "",
             phase: str = "TRAIN", batch: int = 2, extra: str = "", **kwargs) -> Net:
    text = f"""
name: "data"
layer {{ name: "data" type: "Data" top: "data" top: "num"
  data_param {{ source: "{root / 'features'}" backend: LMDB batch_size: {batch} {extra} }}
  transform_param {{ {features_transform} }} }}
layer {{ name: "label" type: "Data" top: "label"
  data_param {{ source: "{root / 'labels'}" backend: LMDB batch_size: {batch} {extra} }}
  transform_param {{ {labels_transform} }} }}
"""
    return Net(parse_net_text(text, "<data net>"), phase, seed=5, **kwargs)


def test_features_and_labels_are_read_in_lock_step(digits_db):
    net = data_net(digits_db)
    try:
        assert net.blob_shapes == {"data": (2, 1, 8, 8), "num": (2,), "label": (2, 1, 8, 8)}
        seen = []
        for _ in range(4):  # 8 samples: wraps around the 6 records
            blobs = net()
            data, label = blobs["data"].numpy(), blobs["label"].numpy()
            index = data - 100 * label
            assert np.all(index == index[:, :, :1, :1])  # one record per sample
            seen += index[:, 0, 0, 0].astype(int).tolist()
            assert blobs["num"].tolist() == index[:, 0, 0, 0].tolist()  # Datum.label
        assert seen == [0, 1, 2, 3, 4, 5, 0, 1]
    finally:
        net.close()


def test_caffe_transform_mean_scale_crop_mirror(digits_db, tmp_path):
    mean = np.full((1, 8, 8), 4.0, np.float32)
    write_mean_binaryproto(mean, tmp_path / "mean.binaryproto")
    net = data_net(digits_db, f'mean_file: "{tmp_path / "mean.binaryproto"}" scale: 0.5 '
                   'crop_size: 4', phase="TEST", batch=1)
    try:
        data = net()["data"].numpy()
        assert data.shape == (1, 1, 4, 4)
        raw = (_label_map(0) * 100).astype(np.float32)
        np.testing.assert_allclose(data[0], (raw[:, 2:6, 2:6] - 4.0) * 0.5)  # centre crop
    finally:
        net.close()
    mirrored = data_net(digits_db, "mirror: true mean_value: 1", batch=6)
    try:
        blobs = mirrored()
        data, label = blobs["data"].numpy(), blobs["label"].numpy()
        flipped = [not np.array_equal(data[i, 0] + 1, _label_map(i)[0] * 100.0 + i)
                   for i in range(6)]
        assert any(flipped) and not all(flipped)  # mirror is random per sample
        # Caffe's mirror is per layer; the label layer had no mirror here.
        np.testing.assert_array_equal(label[:, 0], np.stack([_label_map(i)[0] for i in range(6)]))
    finally:
        mirrored.close()


def test_paired_augmentation_moves_image_and_label_together(digits_db):
    aug = "augmentation {{ {} mirror_x: true mirror_y: true rotate_degrees: 30 scale_min: 0.8 " \
          "scale_max: 1.2 elastic_alpha: 1 elastic_sigma: 3 }}"
    net = data_net(digits_db, aug.format(""), aug.format("is_label: true"), batch=6)
    try:
        for _ in range(2):
            blobs = net()
            data, label = blobs["data"].numpy(), blobs["label"].numpy()
            assert set(np.unique(label)) <= {0.0, 1.0}  # nearest-neighbour labels
            agreement = ((data > 50) == (label > 0.5)).mean()
            assert agreement > 0.9
            assert not np.array_equal(label[:, 0], np.stack([_label_map(i)[0]
                                                             for i in range(6)]))
    finally:
        net.close()


def test_shuffle_changes_order_but_keeps_pairs(digits_db):
    net = data_net(digits_db, batch=6, extra="shuffle: true")
    try:
        blobs = net()
        index = (blobs["data"] - 100 * blobs["label"])[:, 0, 0, 0].int().tolist()
        assert sorted(index) == list(range(6)) and index != list(range(6))
    finally:
        net.close()


def test_float_and_encoded_datums(tmp_path):
    with DatumWriter(tmp_path / "f") as floats, DatumWriter(tmp_path / "p") as pngs:
        for i in range(2):
            floats.put(i, np.full((1, 3, 3), 1000.5 + i, np.float32))
            pngs.put(i, np.full((1, 3, 3), 7 + i, np.uint8), encoding="png")
    text = f"""
layer {{ name: "f" type: "Data" top: "f" data_param {{ source: "{tmp_path / 'f'}"
  backend: LMDB batch_size: 2 }} }}
layer {{ name: "p" type: "Data" top: "p" data_param {{ source: "{tmp_path / 'p'}"
  backend: LMDB batch_size: 2 }} }}"""
    net = Net(parse_net_text(text), "TEST")
    try:
        blobs = net()
        assert blobs["f"][:, 0, 0, 0].tolist() == [1000.5, 1001.5]
        assert blobs["p"][:, 0, 0, 0].tolist() == [7.0, 8.0]
    finally:
        net.close()


def test_data_layer_errors_name_the_layer(tmp_path, digits_db):
    text = f'layer {{ name: "d" type: "Data" top: "d" data_param {{ source: "{tmp_path}/nope" ' \
           f'backend: LMDB batch_size: 1 }} }}'
    with pytest.raises(DLPError, match=r"layer 'd' \(Data\): data_param.source: .*nope"):
        Net(parse_net_text(text), "TRAIN")
    with pytest.raises(DLPError, match=r"batch_size 3 differs"):
        bad = f"""
layer {{ name: "a" type: "Data" top: "a" data_param {{ source: "{digits_db / 'features'}"
  backend: LMDB batch_size: 2 }} }}
layer {{ name: "b" type: "Data" top: "b" data_param {{ source: "{digits_db / 'labels'}"
  backend: LMDB batch_size: 3 }} }}"""
        Net(parse_net_text(bad), "TRAIN")


def test_dummy_data_and_input_layers():
    text = """
layer { name: "d" type: "DummyData" top: "a" top: "b" dummy_data_param {
  shape { dim: 2 dim: 3 } shape { dim: 4 }
  data_filler { type: "constant" value: 3 } data_filler { type: "gaussian" } } }
layer { name: "legacy" type: "DummyData" top: "c" dummy_data_param {
  num: 1 channels: 2 height: 3 width: 4 } }"""
    net = Net(parse_net_text(text), "TRAIN", seed=0)
    first, second = net(), net()
    assert first["a"].tolist() == [[3.0] * 3] * 2 and first["c"].shape == (1, 2, 3, 4)
    assert not torch.equal(first["b"], second["b"])  # random fillers refill each forward
    inputs = net_with_inputs("", {"x": (1, 2)})
    with pytest.raises(NetInputError, match=r"input blob\(s\) 'x' not given; expected "
                                            "shapes x \\(1, 2\\)"):
        inputs()
    with pytest.raises(NetInputError, match=r"input 'x' has shape \(3, 2\)"):
        inputs({"x": torch.zeros(3, 2)})
