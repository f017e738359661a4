"""Dropped paths → inputs, ground-truth matching, the configuration's checks, transforms."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlp.deploy.config import DeployConfig, find_snapshots, run_model_files
from dlp.deploy.inputs import collect_inputs
from dlp.deploy.session import InputTransform, restore_probabilities
from dlp.deploy.truth import GroundTruthError, GroundTruthIndex, load_ground_truth
from dlp.errors import InputError


def test_folders_expand_to_images_with_unique_names(tmp_path, trained_model) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / folder / "scan.png")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    series = tmp_path / "series"
    shutil.copytree(trained_model.val_case_dir, series)
    items = collect_inputs([tmp_path])
    names = sorted(i.name for i in items)
    assert names == ["scan", "scan_2", "series_series"]
    assert next(i for i in items if i.is_series).path == series
    per_file = collect_inputs([series], group_series=False)
    assert len(per_file) == 8 and not any(i.is_series for i in per_file)
    with pytest.raises(InputError, match=r"missing\.dcm: no such file"):
        collect_inputs([tmp_path / "missing.dcm"])


def test_ground_truth_by_name_and_by_sunnybrook_contour(tmp_path, trained_model) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    mask = np.zeros((6, 6), np.uint8)
    mask[1:3, 1:4] = 255  # a binary mask saved 0/255
    Image.fromarray(mask).save(truth / "scan_mask.png")
    index = GroundTruthIndex.scan(truth)
    (item,) = collect_inputs([_png(tmp_path / "scan.png")])
    found = index.find(item)
    assert found == truth / "scan_mask.png"
    labels = load_ground_truth(found, (1, 6, 6), 2)
    assert labels.sum() == 6 and labels.max() == 1
    with pytest.raises(GroundTruthError, match="ground truth is 1x6x6 but the image is 1x5x5"):
        load_ground_truth(found, (1, 5, 5), 2)
    contours = GroundTruthIndex.scan(trained_model.contours_dir)
    (dicom,) = collect_inputs(trained_model.val_images[:1])
    contour = contours.find(dicom)
    assert contour.name.endswith("icontour-manual.txt")
    assert load_ground_truth(contour, (1, 64, 64), 2).sum() > 20


def _png(path: Path) -> Path:
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(path)
    return path


def test_configuration_problems_name_each_field(tmp_path, trained_model) -> None:
    config = DeployConfig()
    problems = config.problems()
    assert set(problems) == {"deploy_net", "weights"}
    config = DeployConfig(deploy_net=str(trained_model.deploy_net),
                          weights=str(tmp_path / "w.caffemodel"), device="gpu0",
                          labels=str(trained_model.labels))
    problems = config.problems()
    assert "w.caffemodel not found" in problems["weights"]
    assert "expected cpu or cuda:N" in problems["device"]
    config.weights, config.device = str(trained_model.weights), "cpu"
    assert config.readiness() == (True, "ready to load")
    config.save(tmp_path / "config.json")
    assert DeployConfig.load(tmp_path / "config.json") == config


def test_a_run_offers_its_latest_snapshot(tmp_path, trained_model) -> None:
    run = tmp_path / "run-1"
    (run / "snapshots").mkdir(parents=True)
    for it in (100, 2000, 300):
        shutil.copy(trained_model.weights, run / "snapshots" / f"net_iter_{it}.caffemodel")
    shutil.copy(trained_model.deploy_net, run / "deploy.prototxt")
    assert [p.name for p in find_snapshots(run)][-1] == "net_iter_2000.caffemodel"
    found = run_model_files(run)
    assert found["weights"].name == "net_iter_2000.caffemodel"
    assert found["deploy_net"] == run / "deploy.prototxt"


def test_training_transform_is_applied_in_caffe_order() -> None:
    from dlp.net.prototxt import parse_net_text

    net = parse_net_text(
        'layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST } '
        "transform_param { scale: 0.5 mean_value: 10 } "
        'data_param { source: "x" batch_size: 1 backend: LMDB } }', "train")
    transform = InputTransform.from_train_net(net, "data")
    out = transform.apply(np.full((1, 2, 2), 30, np.float32))
    np.testing.assert_allclose(out, 10.0)  # (30 - 10) * 0.5
    assert transform.description == "mean 10; scale 0.5"


def test_pad_crop_probabilities_are_put_back_in_place() -> None:
    probs = torch.zeros((1, 2, 4, 4))
    probs[:, 1] = 1.0
    out = restore_probabilities(probs, (6, 3), {"size_policy": "pad_crop"})
    # rows: the net saw rows 1..4 of 6 (centre crop); columns: 3 of the 4 padded ones
    assert out.shape == (1, 2, 6, 3)
    assert out[0, 1, 1:5].eq(1).all() and out[0, 0, 0].eq(1).all() and out[0, 0, 5].eq(1).all()


def test_a_folder_of_several_series_is_read_once(tmp_path, trained_model, monkeypatch) -> None:
    import pydicom

    import dlp.data.readers.dicom_series as series_reader
    from dlp.deploy.inputs import load_input

    folder = tmp_path / "study"
    folder.mkdir()
    for series_number, case in enumerate(
            sorted((trained_model.phantom / "images" / "challenge_training").iterdir())[:2],
            start=1):
        for path in sorted(case.glob("*.dcm"))[:2]:
            ds = pydicom.dcmread(path)
            ds.SeriesNumber = series_number
            ds.save_as(folder / f"s{series_number}_{path.name}")
    reads = []
    real = series_reader.read_dicom_dataset
    monkeypatch.setattr(series_reader, "read_dicom_dataset",
                        lambda path, **kw: reads.append(path.name) or real(path, **kw))
    items = collect_inputs([folder])
    assert len(items) == 2 and all(i.is_series for i in items)
    volumes = [load_input(i) for i in items]
    # each series reads its own files, each file once
    assert sorted(reads) == sorted(p.name for p in folder.iterdir())
    uids = {v.meta["series_uid"] for v in volumes}
    assert uids == {i.series_uid for i in items}
    assert all(v.array.shape[0] == 2 for v in volumes)
    # read again when asked again (nothing is kept)
    assert load_input(items[0]).meta["series_uid"] == items[0].series_uid
    assert len(reads) == 6
