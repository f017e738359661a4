"""The shared preprocessing (builder and Deploy) and the dataset manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlp.data.manifest import Manifest, SplitInfo
from dlp.data.preprocess import Preprocessing, preprocess_label, preprocess_slice, restore_label
from dlp.errors import InputError

IMAGE = np.arange(6 * 8, dtype=np.float32).reshape(6, 8) * 100 - 500  # -500 .. 4200


def test_intensity_modes() -> None:
    raw = preprocess_slice(IMAGE, Preprocessing(size=None, intensity="none", bits=16))
    assert raw.dtype == np.float32 and raw.shape == (1, 6, 8)
    np.testing.assert_array_equal(raw[0], IMAGE)
    minmax = preprocess_slice(IMAGE, Preprocessing(size=None, intensity="minmax"))
    assert minmax.dtype == np.uint8 and (minmax.min(), minmax.max()) == (0, 255)
    window = preprocess_slice(IMAGE, Preprocessing(size=None, intensity="window",
                                                   window=(1000, 1000), bits=16))
    assert window.min() == 0 and window.max() == 255
    assert window[0, 0, 0] == 0 and window[0, -1, -1] == 255
    assert window[0].ravel()[15] == pytest.approx((1000 - 500) * 255 / 1000)  # value 1000
    z16 = preprocess_slice(IMAGE, Preprocessing(size=None, intensity="zscore", bits=16))
    assert abs(float(z16.mean())) < 1e-5 and float(z16.std()) == pytest.approx(1, abs=1e-5)
    z8 = preprocess_slice(IMAGE, Preprocessing(size=None, intensity="zscore", bits=8))
    np.testing.assert_array_equal(z8, np.clip(np.rint(z16 * 32 + 128), 0, 255))


def test_sizes_channels_and_label_round_trip() -> None:
    labels = np.zeros((6, 8), np.uint8)
    labels[1:4, 2:7] = 2
    for policy in ("resize", "pad_crop"):
        prep = Preprocessing(size=(12, 4), size_policy=policy, channels=3)
        features = preprocess_slice(IMAGE, prep)
        assert features.shape == (3, 12, 4)
        np.testing.assert_array_equal(features[0], features[1])
        resized = preprocess_label(labels, prep)
        assert resized.shape == (1, 12, 4) and set(np.unique(resized)) <= {0, 2}
    prep = Preprocessing(size=(10, 10), size_policy="pad_crop")
    back = restore_label(preprocess_label(labels, prep)[0], (6, 8), prep)
    np.testing.assert_array_equal(back, labels)  # padding is exactly invertible
    prep = Preprocessing(size=(12, 16), size_policy="resize")
    back = restore_label(preprocess_label(labels, prep)[0], (6, 8), prep)
    np.testing.assert_array_equal(back, labels)  # an integer zoom is too


def test_rgb_input_becomes_bgr_or_luma() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    bgr = preprocess_slice(rgb, Preprocessing(size=None, intensity="none", channels=3))
    assert bgr[2, 0, 0] == 200 and bgr[0, 0, 0] == 0
    gray = preprocess_slice(rgb, Preprocessing(size=None, intensity="none", channels=1))
    assert gray[0, 0, 0] == round(0.299 * 200)


@pytest.mark.parametrize("kwargs, message", [
    ({"intensity": "log"}, "intensity must be one of"),
    ({"intensity": "window"}, "needs a window"),
    ({"channels": 2}, "channels must be 1 or 3"),
    ({"bits": 12}, "bits must be 8 or 16"),
    ({"size_policy": "stretch"}, "size policy"),
])
def test_bad_preprocessing_is_refused(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        Preprocessing(**kwargs)


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    prep = Preprocessing(size=(64, 64), intensity="window", window=(40, 400), bits=16)
    manifest = Manifest(
        shape=[1, 64, 64], dtype=prep.dtype, classes=["background", "LV cavity"],
        splits={"train": SplitInfo(10, ["a", "b"], "train_db/features", "train_db/labels")},
        preprocessing=prep, class_pixel_frequencies=[0.98, 0.02],
    )
    manifest.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.preprocessing == prep and loaded.num_classes == 2 and loaded.dims == 2
    assert loaded.db_path("train", "labels") == tmp_path / "train_db/labels"
    assert loaded.to_dict() == manifest.to_dict()
    with pytest.raises(InputError, match="has no 'val' split"):
        loaded.db_path("val")
    data = json.loads((tmp_path / "manifest.json").read_text())
    del data["shape"]
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="malformed manifest field"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{\n  oops")
    with pytest.raises(InputError, match=r"manifest\.json:2: manifest is not valid JSON"):
        Manifest.load(tmp_path / "manifest.json")
