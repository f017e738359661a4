"""The phantom: deterministic, realistic DICOM tags, Sunnybrook quirks, contours on target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dlp.data.phantom import generate_phantom, phantom_case_names
from dlp.data.rasterize import polygon_mask
from dlp.data.sunnybrook import read_contour
from dlp.data.sunnybrook_layout import DEFAULT_SERIES_TABLE, read_series_table
from dlp.errors import InputError


def _contour_dir(phantom, case) -> Path:
    return (phantom.contours_dir / "TrainingDataContours" / case.contour_folder
            / "contours-manual" / "IRCCI-expert")


def test_layout_has_the_real_quirks(small_phantom) -> None:
    case = small_phantom.cases[0]
    assert case.name == "SC-HF-I-1" and case.contour_folder == "SC-HF-I-01"
    assert case.series == DEFAULT_SERIES_TABLE["SC-HF-I-1"] == 4
    images = sorted(p.name for p in (small_phantom.images_dir / "challenge_training"
                                     / case.name).iterdir())
    assert images[:2] == ["IM-0004-0001.dcm", "IM-0004-0009.dcm"]
    contours = sorted(p.name for p in _contour_dir(small_phantom, case).iterdir())
    assert "IM-0001-0001-icontour-manual.txt" in contours
    assert "IM-0001-0001-ocontour-manual.txt" in contours
    # end-systole frames have an i-contour only, as in the challenge data
    assert "IM-0001-0009-icontour-manual.txt" in contours
    assert "IM-0001-0009-ocontour-manual.txt" not in contours
    table = read_series_table(small_phantom.series_table)
    assert table == {c.name: c.series for c in small_phantom.cases}
    assert all(DEFAULT_SERIES_TABLE[name] == series for name, series in table.items())
    assert [c.name for c in small_phantom.cases] == phantom_case_names(4)
    assert len({name.rsplit("-", 1)[0] for name in phantom_case_names(4)}) == 4


def test_dicom_tags_are_realistic_and_readable(small_phantom) -> None:
    case = small_phantom.cases[1]
    folder = small_phantom.images_dir / "challenge_training" / case.name
    files = sorted(folder.iterdir())
    datasets = [pydicom.dcmread(path) for path in files]
    ds = datasets[0]
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.Modality == "MR" and ds.PatientID == case.name
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelRepresentation) == (64, 64, 16, 0)
    assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.max() > 255
    assert len(ds.PixelSpacing) == 2 and float(ds.SliceThickness) == 8.0
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert {d.InstanceNumber for d in datasets} == set(case.image_numbers)
    # slice locations step by the slice gap along the plane normal
    locations = sorted({float(d.SliceLocation) for d in datasets})
    np.testing.assert_allclose(np.diff(locations), 10.0, atol=1e-3)
    for d in datasets:
        row, col = np.array(d.ImageOrientationPatient[:3]), np.array(d.ImageOrientationPatient[3:])
        assert abs(row @ col) < 1e-5
        assert float(np.array(d.ImagePositionPatient, float) @ np.cross(row, col)) == \
            pytest.approx(float(d.SliceLocation), abs=1e-3)


def test_contours_trace_the_bright_blood_pool(small_phantom) -> None:
    case = small_phantom.cases[2]
    folder = small_phantom.images_dir / "challenge_training" / case.name
    image = pydicom.dcmread(folder / f"IM-{case.series:04d}-0001.dcm").pixel_array.astype(float)
    contours = _contour_dir(small_phantom, case)
    endo = polygon_mask(read_contour(contours / "IM-0001-0001-icontour-manual.txt"), (64, 64))
    epi = polygon_mask(read_contour(contours / "IM-0001-0001-ocontour-manual.txt"), (64, 64))
    assert endo.sum() > 20 and (epi & ~endo).sum() > 20
    assert np.all(epi[endo])  # the cavity lies inside the epicardium
    blood, myocardium = image[endo].mean(), image[epi & ~endo].mean()
    assert blood > 2 * myocardium


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = generate_phantom(tmp_path / "a", cases=1, slices=1, size=48, seed=5)
    b = generate_phantom(tmp_path / "b", cases=1, slices=1, size=48, seed=5)
    c = generate_phantom(tmp_path / "c", cases=1, slices=1, size=48, seed=6)
    rel = Path("challenge_training/SC-HF-I-1/IM-0004-0001.dcm")
    assert (a.images_dir / rel).read_bytes() == (b.images_dir / rel).read_bytes()
    assert not np.array_equal(pydicom.dcmread(a.images_dir / rel).pixel_array,
                              pydicom.dcmread(c.images_dir / rel).pixel_array)


def test_bad_arguments_and_existing_output_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="between 1 and 45"):
        generate_phantom(tmp_path / "x", cases=46)
    generate_phantom(tmp_path / "y", cases=1, slices=1, size=32)
    with pytest.raises(InputError, match="already exists"):
        generate_phantom(tmp_path / "y", cases=1, slices=1, size=32)
    generate_phantom(tmp_path / "y", cases=2, slices=1, size=32, overwrite=True)
    assert len(list((tmp_path / "y" / "images" / "challenge_training").iterdir())) == 2


def test_phantom_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dlp", "phantom", "--out", str(tmp_path / "p"), "--cases", "2",
         "--slices", "2", "--size", "48", "--seed", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 8 images of 2 cases" in result.stdout
    assert len(list((tmp_path / "p" / "images").rglob("*.dcm"))) == 8
    again = subprocess.run(
        [sys.executable, "-m", "dlp", "phantom", "--out", str(tmp_path / "p")],
        capture_output=True, text=True,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
