"""Dataset builds: DIGITS layout, no case leakage, integrity, reports, and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from dlp.data.builder import BuildError, BuildOptions, build_dataset, split_cases
from dlp.data.lmdb_io import DatumDB, read_mean_binaryproto
from dlp.data.manifest import Manifest
from dlp.data.preprocess import Preprocessing, preprocess_slice
from dlp.data.readers import read_image
from dlp.data.sources import FolderSource, NiftiSource, SunnybrookSource
from dlp.data.sunnybrook import contour_labels, scan_sunnybrook
from dlp.errors import Cancelled
from dlp.progress import CancelToken

SMALL = Preprocessing(size=(48, 48), intensity="minmax")


def _records(out: Path) -> list[dict[str, str]]:
    with open(out / "records.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _sunnybrook(phantom, classes: str = "endo") -> SunnybrookSource:
    return SunnybrookSource(phantom.images_dir, phantom.contours_dir, classes)


def test_sunnybrook_build_writes_the_digits_layout(small_phantom, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = build_dataset(_sunnybrook(small_phantom), out,
                           BuildOptions(preprocessing=SMALL, val_percent=25, seed=1))
    for db in ("train_db/features", "train_db/labels", "val_db/features", "val_db/labels"):
        assert (out / db / "data.mdb").is_file()
    assert not (out / "test_db").exists()
    manifest = Manifest.load(out)
    assert manifest.shape == [1, 48, 48] and manifest.dtype == "uint8" and manifest.dims == 2
    assert manifest.classes == ["background", "LV cavity"]
    assert sum(manifest.class_pixel_frequencies) == pytest.approx(1.0)
    assert 0 < manifest.class_pixel_frequencies[1] < 0.2
    assert manifest.splits["train"].count + manifest.splits["val"].count == 24
    assert report.counts == {"train": manifest.splits["train"].count,
                             "val": manifest.splits["val"].count}
    assert manifest.preprocessing == SMALL
    assert json.loads((out / "build-report.json").read_text())["problems"] == []

    features, labels = DatumDB(manifest.db_path("train")), DatumDB(manifest.db_path("train",
                                                                                     "labels"))
    assert features.keys() == labels.keys() == [f"{i:09d}" for i in range(len(features))]
    _key, first, label = labels.first()
    assert first.shape == (1, 48, 48) and first.dtype == np.uint8 and label == 0
    mean = read_mean_binaryproto(out / "mean.binaryproto")
    stacked = features.get_many(features.keys()).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(axis=0), atol=1e-3)


def test_records_hold_exactly_the_preprocessed_source(small_phantom, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(_sunnybrook(small_phantom, "endo,epi"), out,
                  BuildOptions(preprocessing=Preprocessing(size=None, intensity="none",
                                                           bits=16), val_percent=25))
    scan = {item.name: item for item in scan_sunnybrook(small_phantom.images_dir,
                                                        small_phantom.contours_dir).images}
    rows = _records(out)
    assert len(rows) == 12  # end-systole frames lack o-contours and are skipped
    row = rows[5]
    item = scan[row["slice"]]
    image = read_image(item.image_path).array[0]
    db = DatumDB(out / f"{row['split']}_db" / "features")
    stored = db.get(row["key"])
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored[0], image)  # 16-bit kept exactly
    labels = DatumDB(out / f"{row['split']}_db" / "labels").get(row["key"])
    np.testing.assert_array_equal(labels[0], contour_labels(item, image.shape, "endo,epi"))
    report = json.loads((out / "build-report.json").read_text())
    assert len(report["skipped"]) == 12 and "o- and i-contours" in report["skipped"][0]["reason"]
    assert Manifest.load(out).classes == ["background", "LV cavity", "myocardium"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_no_case_is_in_two_splits(small_phantom, tmp_path: Path, seed: int) -> None:
    split = split_cases([f"case{i}" for i in range(10)], 20, 20, seed)
    assert [len(split[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert len({case for cases in split.values() for case in cases}) == 10
    out = tmp_path / "ds"
    build_dataset(_sunnybrook(small_phantom), out,
                  BuildOptions(preprocessing=SMALL, val_percent=25, test_percent=25, seed=seed))
    cases_by_split: dict[str, set[str]] = {}
    for row in _records(out):
        cases_by_split.setdefault(row["split"], set()).add(row["case"])
    assert set(cases_by_split) == {"train", "val", "test"}
    splits = list(cases_by_split.values())
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not a & b
    manifest = Manifest.load(out)
    assert {s: set(info.cases) for s, info in manifest.splits.items()} == cases_by_split


def test_same_seed_same_dataset(small_phantom, tmp_path: Path) -> None:
    options = BuildOptions(preprocessing=SMALL, val_percent=25, seed=7)
    build_dataset(_sunnybrook(small_phantom), tmp_path / "a", options)
    build_dataset(_sunnybrook(small_phantom), tmp_path / "b", options)
    assert _records(tmp_path / "a") == _records(tmp_path / "b")
    a, b = DatumDB(tmp_path / "a/train_db/features"), DatumDB(tmp_path / "b/train_db/features")
    keys = a.keys()
    assert keys and all(a.get_bytes(k) == b.get_bytes(k) for k in keys)


def test_rebuild_replaces_an_existing_dataset_only_on_success(small_phantom,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset(_sunnybrook(small_phantom), out, BuildOptions(preprocessing=SMALL))
    before = (out / "manifest.json").read_text()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        build_dataset(_sunnybrook(small_phantom), out,
                      BuildOptions(preprocessing=Preprocessing(size=(32, 32))), cancel=token)
    assert (out / "manifest.json").read_text() == before


def test_corrupt_file_is_reported_and_strict_fails(phantom_copy, tmp_path: Path) -> None:
    victim = phantom_copy.images_dir / "challenge_training" / "SC-HYP-1" / "IM-0550-0021.dcm"
    victim.write_bytes(victim.read_bytes()[:700])
    missing = phantom_copy.images_dir / "challenge_training" / "SC-N-2" / "IM-0898-0009.dcm"
    missing.unlink()
    report = build_dataset(_sunnybrook(phantom_copy), tmp_path / "ds",
                           BuildOptions(preprocessing=SMALL))
    problems = {Path(p.path).name: p.reason for p in report.problems}
    assert "IM-0550-0021.dcm" in problems
    assert "IM-0001-0009-icontour-manual.txt" in problems
    assert "IM-0898-0009.dcm not found" in problems["IM-0001-0009-icontour-manual.txt"]
    saved = json.loads((tmp_path / "ds" / "build-report.json").read_text())
    assert {Path(p["file"]).name for p in saved["problems"]} == set(problems)
    assert report.total == 22
    assert "IM-0550-0021.dcm" in report.summary()

    with pytest.raises(BuildError, match=r"IM-0001-0009-icontour-manual\.txt.*--strict"):
        build_dataset(_sunnybrook(phantom_copy), tmp_path / "strict",
                      BuildOptions(preprocessing=SMALL, strict=True))
    missing.write_bytes(b"")  # now only the truncated file is wrong... plus this empty one
    with pytest.raises(BuildError, match=r"IM-0(550-0021|898-0009)\.dcm"):
        build_dataset(_sunnybrook(phantom_copy), tmp_path / "strict",
                      BuildOptions(preprocessing=SMALL, strict=True))
    assert not (tmp_path / "strict").exists()


def _write_pairs(folder: Path, names: list[str], size=(20, 24), mask_size=None) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray((rng.random(size) * 60000).astype(np.uint16)).save(
            folder / "images" / f"{name}.png")
        mask = np.zeros(mask_size or size, np.uint8)
        mask[5:12, 6:14] = 255
        Image.fromarray(mask).save(folder / "masks" / f"{name}.png")


def test_folder_source_pairs_by_name_and_splits_by_patient(tmp_path: Path) -> None:
    names = [f"p{p}_slice{s}" for p in range(4) for s in range(3)]
    _write_pairs(tmp_path, names)
    source = FolderSource(tmp_path / "images", tmp_path / "masks", case_pattern=r"^(p\d+)_")
    report = build_dataset(source, tmp_path / "ds", BuildOptions(
        preprocessing=Preprocessing(size=(16, 16), size_policy="pad_crop", channels=3),
        val_percent=25))
    manifest = report.manifest
    assert manifest.shape == [3, 16, 16] and manifest.classes == ["background", "class 1"]
    assert len(manifest.splits["val"].cases) == 1 and manifest.splits["val"].count == 3
    labels = DatumDB(tmp_path / "ds/train_db/labels").get(0)
    assert set(np.unique(labels)) == {0, 1}  # 0/255 masks become 0/1
    features = DatumDB(tmp_path / "ds/train_db/features").get(0)
    np.testing.assert_array_equal(features[0], features[2])  # gray replicated


def test_folder_size_mismatch_names_both_files(tmp_path: Path) -> None:
    _write_pairs(tmp_path, ["a", "b"], size=(20, 24))
    _write_pairs(tmp_path, ["c"], size=(20, 24), mask_size=(20, 20))
    source = FolderSource(tmp_path / "images", tmp_path / "masks")
    report = build_dataset(source, tmp_path / "ds", BuildOptions(preprocessing=SMALL,
                                                                 val_percent=0))
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.path.endswith("c.png") and str(tmp_path / "masks" / "c.png") in problem.reason
    with pytest.raises(BuildError, match=r"c\.png.*masks/c\.png"):
        build_dataset(source, tmp_path / "strict",
                      BuildOptions(preprocessing=SMALL, val_percent=0, strict=True))


def test_nifti_pairs_are_sliced_along_the_chosen_axis(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for index in range(3):
        data = np.random.default_rng(index).random((10, 12, 5)).astype(np.float32)
        labels = np.zeros((10, 12, 5), np.uint8)
        labels[2:6, 3:9, :] = 1
        labels[3:5, 4:6, 1:3] = 2
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "img" / f"vol{index}.nii.gz")
        nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "lab" / f"vol{index}.nii.gz")
    report = build_dataset(NiftiSource(tmp_path / "img", tmp_path / "lab", axis="z"),
                           tmp_path / "z", BuildOptions(preprocessing=Preprocessing(size=None),
                                                        val_percent=34))
    assert report.manifest.shape == [1, 12, 10] and report.total == 15
    assert report.manifest.classes == ["background", "class 1", "class 2"]
    report = build_dataset(NiftiSource(tmp_path / "img", tmp_path / "lab", axis="x"),
                           tmp_path / "x", BuildOptions(preprocessing=Preprocessing(size=None),
                                                        val_percent=34))
    assert report.manifest.shape == [1, 5, 12] and report.total == 30


class _Run:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def _dlp(capsys):
    """``python -m dlp …`` in-process (the same ``dlp.cli.main``, without a new interpreter)."""
    from dlp.cli import main

    def run(*args: str) -> _Run:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return _Run(code, out.out, out.err)

    return run


def test_dataset_command_end_to_end(small_phantom, tmp_path: Path, _dlp) -> None:
    out = tmp_path / "ds"
    result = _dlp("dataset", "sunnybrook", "--images", str(small_phantom.images_dir),
                  "--contours", str(small_phantom.contours_dir), "--out", str(out),
                  "--val", "25", "--size", "32", "--classes", "endo", "--seed", "2",
                  "--intensity", "window", "--window", "300", "600", "--bits", "16")
    assert result.returncode == 0, result.stderr
    assert "built 24 slices" in result.stdout and "manifest:" in result.stdout
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.dtype == "float32" and manifest.preprocessing.window == (300.0, 600.0)
    assert manifest.source["kind"] == "sunnybrook"

    failed = _dlp("dataset", "sunnybrook", "--images", str(tmp_path / "none"), "--contours",
                  str(small_phantom.contours_dir), "--out", str(tmp_path / "x"))
    assert failed.returncode == 1
    assert "does not exist" in failed.stderr and "Traceback" not in failed.stderr
    bad = _dlp("dataset", "folder", "--images", str(tmp_path), "--masks", str(tmp_path),
               "--out", str(tmp_path / "y"), "--intensity", "window")
    assert bad.returncode == 1 and "needs a window" in bad.stderr


def test_preprocess_matches_what_the_builder_stored(small_phantom, tmp_path: Path) -> None:
    """Deploy's contract: preprocess_slice(manifest.preprocessing) == the training input."""
    out = tmp_path / "ds"
    build_dataset(_sunnybrook(small_phantom), out,
                  BuildOptions(preprocessing=Preprocessing(size=(40, 40), intensity="zscore"),
                               val_percent=25))
    manifest = Manifest.load(out)
    row = _records(out)[3]
    scan = {i.name: i for i in scan_sunnybrook(small_phantom.images_dir,
                                               small_phantom.contours_dir).images}
    image = read_image(scan[row["slice"]].image_path).array[0]
    stored = DatumDB(manifest.db_path(row["split"])).get(row["key"])
    np.testing.assert_array_equal(preprocess_slice(image, manifest.preprocessing), stored)


def test_png_encoded_features_read_back_identically(tmp_path: Path) -> None:
    _write_pairs(tmp_path, ["a", "b", "c"])
    source = FolderSource(tmp_path / "images", tmp_path / "masks")
    prep = Preprocessing(size=(16, 16), channels=3)
    report = build_dataset(source, tmp_path / "ds",
                           BuildOptions(preprocessing=prep, val_percent=0, encoding="png"))
    assert report.manifest.extra["encoding"] == "png"
    rows = _records(tmp_path / "ds")
    db = DatumDB(tmp_path / "ds/train_db/features")
    from dlp.proto import caffe_pb2

    assert caffe_pb2.Datum.FromString(db.get_bytes(rows[0]["key"])).encoded
    image = read_image(tmp_path / "images" / rows[0]["slice"]).array[0]
    np.testing.assert_array_equal(db.get(rows[0]["key"]), preprocess_slice(image, prep))


def test_folder_and_nifti_commands(tmp_path: Path, _dlp) -> None:
    _write_pairs(tmp_path / "f", ["p1_a", "p1_b", "p2_a", "p2_b"])
    result = _dlp("dataset", "folder", "--images", str(tmp_path / "f/images"), "--masks",
                  str(tmp_path / "f/masks"), "--out", str(tmp_path / "fds"), "--size", "16", "20",
                  "--case-pattern", r"^(p\d)_", "--val", "50", "--class-names", "background,lesion")
    assert result.returncode == 0, result.stderr
    manifest = Manifest.load(tmp_path / "fds")
    assert manifest.shape == [1, 16, 20] and manifest.classes == ["background", "lesion"]
    assert manifest.splits["train"].cases != manifest.splits["val"].cases

    (tmp_path / "n/img").mkdir(parents=True)
    (tmp_path / "n/lab").mkdir(parents=True)
    for name in ("a", "b"):
        nib.save(nib.Nifti1Image(np.ones((6, 7, 3), np.float32), np.eye(4)),
                 tmp_path / "n/img" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((6, 7, 3), np.uint8), np.eye(4)),
                 tmp_path / "n/lab" / f"{name}.nii.gz")
    result = _dlp("dataset", "nifti", "--images", str(tmp_path / "n/img"), "--labels",
                  str(tmp_path / "n/lab"), "--out", str(tmp_path / "nds"), "--axis", "y",
                  "--size", "0", "--val", "50")
    assert result.returncode == 0, result.stderr
    assert Manifest.load(tmp_path / "nds").shape == [1, 3, 6]
    strict = _dlp("dataset", "nifti", "--images", str(tmp_path / "n/img"), "--labels",
                  str(tmp_path / "f/masks"), "--out", str(tmp_path / "bad"), "--strict")
    assert strict.returncode == 1 and "no label volume named a" in strict.stderr


def test_an_unrelated_existing_folder_is_never_replaced(small_phantom, tmp_path: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    with pytest.raises(BuildError, match="not a DLP dataset"):
        build_dataset(_sunnybrook(small_phantom), precious, BuildOptions(preprocessing=SMALL))
    assert (precious / "chapter1.tex").read_text() == "years of work"
    (tmp_path / "empty").mkdir()
    build_dataset(_sunnybrook(small_phantom), tmp_path / "empty", BuildOptions(preprocessing=SMALL))
    assert (tmp_path / "empty" / "manifest.json").is_file()


def test_a_reader_open_during_a_rebuild_and_a_new_reader_see_their_own_data(
    small_phantom, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    build_dataset(_sunnybrook(small_phantom), out,
                  BuildOptions(preprocessing=Preprocessing(size=(32, 32))))
    old = DatumDB(out / "train_db/features")
    assert old.first()[1].shape == (1, 32, 32)
    build_dataset(_sunnybrook(small_phantom), out,
                  BuildOptions(preprocessing=Preprocessing(size=(24, 24))))
    with DatumDB(out / "train_db/features") as new:
        assert new.first()[1].shape == (1, 24, 24)
    assert old.first()[1].shape == (1, 32, 32)  # still reading what it opened
    old.close()
