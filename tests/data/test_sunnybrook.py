"""The Sunnybrook importer: folder schemes, case→series mapping, contours → labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dlp.data.sunnybrook import (
    ContourError,
    contour_labels,
    read_contour,
    scan_sunnybrook,
)
from dlp.data.sunnybrook_layout import (
    DEFAULT_SERIES_TABLE,
    canonical_case,
    contour_case_folder,
    read_series_table,
)
from dlp.errors import InputError


def test_case_names_map_between_padded_and_unpadded() -> None:
    assert canonical_case("SC-HF-I-01") == "SC-HF-I-1"
    assert canonical_case("sc-hyp-40") == "SC-HYP-40"
    assert canonical_case("SC-HF-NI-3") == "SC-HF-NI-3"
    assert canonical_case("SC-XX-1") is None and canonical_case("contours-manual") is None
    assert contour_case_folder("SC-N-2") == "SC-N-02"
    assert contour_case_folder("SC-HF-NI-33") == "SC-HF-NI-33"
    assert len(DEFAULT_SERIES_TABLE) == 45
    assert DEFAULT_SERIES_TABLE["SC-HYP-9"] == 3 and DEFAULT_SERIES_TABLE["SC-N-7"] == 1009


def test_scan_matches_every_contour_of_the_phantom(small_phantom) -> None:
    scan = scan_sunnybrook(small_phantom.images_dir, small_phantom.contours_dir)
    assert scan.problems == []
    assert scan.cases == sorted(c.name for c in small_phantom.cases)
    assert len(scan.images) == small_phantom.image_count
    item = next(i for i in scan.images if i.case == "SC-HF-NI-3" and i.image_number == 21)
    assert item.image_path.name == "IM-0379-0021.dcm"
    assert item.image_path.parent.name == "SC-HF-NI-3"
    assert set(item.contours) == {"i", "o"}
    assert item.contours["i"].parent.parent.parent.name == "SC-HF-NI-03"


def test_the_later_release_folder_scheme_is_recognised(small_phantom, tmp_path: Path) -> None:
    images = tmp_path / "Sunnybrook Cardiac MR Database DICOMPart3" / "TrainingDataDICOM"
    contours = tmp_path / "Sunnybrook Cardiac MR Database ContoursPart3" / "TrainingDataContours"
    shutil.copytree(small_phantom.images_dir / "challenge_training", images)
    shutil.copytree(small_phantom.contours_dir / "TrainingDataContours", contours)
    scan = scan_sunnybrook(tmp_path / "Sunnybrook Cardiac MR Database DICOMPart3",
                           tmp_path / "Sunnybrook Cardiac MR Database ContoursPart3")
    assert scan.problems == [] and len(scan.images) == small_phantom.image_count


def test_series_table_file_overrides_the_default(phantom_copy, tmp_path: Path) -> None:
    case_dir = phantom_copy.images_dir / "challenge_training" / "SC-HF-I-1"
    for path in case_dir.iterdir():  # pretend this case's short-axis series is 0777
        path.rename(case_dir / path.name.replace("IM-0004-", "IM-0777-"))
    scan = scan_sunnybrook(phantom_copy.images_dir, phantom_copy.contours_dir)
    missing = [(p, r) for p, r in scan.problems if "SC-HF-I-01" in str(p)]
    assert missing and "IM-0004-0001.dcm not found" in " ".join(r for _, r in missing)

    (tmp_path / "table.csv").write_text("case,series\nSC-HF-I-01,0777\n")
    scan = scan_sunnybrook(phantom_copy.images_dir, phantom_copy.contours_dir,
                           tmp_path / "table.csv")
    assert scan.problems == []
    assert all(i.image_path.name.startswith("IM-0777-") for i in scan.images
               if i.case == "SC-HF-I-1")
    (tmp_path / "table.json").write_text(json.dumps({"SC-HF-I-1": 777}))
    assert scan_sunnybrook(phantom_copy.images_dir, phantom_copy.contours_dir,
                           tmp_path / "table.json").problems == []


def test_bad_series_tables_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("case,series\nSC-HF-I-1,0004\nnot-a-case,12\n")
    with pytest.raises(InputError, match=r"bad\.csv:3: 'not-a-case'"):
        read_series_table(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("SC-N-2,abc\n")
    with pytest.raises(InputError, match=r"bad2\.csv:1: series of SC-N-2"):
        read_series_table(tmp_path / "bad2.csv")


def test_missing_contour_or_image_folders(small_phantom, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan_sunnybrook(tmp_path / "nope", small_phantom.contours_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no Sunnybrook case folders"):
        scan_sunnybrook(small_phantom.images_dir, tmp_path / "empty")


def test_contour_files_are_parsed_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "IM-0001-0001-icontour-manual.txt"
    path.write_text("10.5 20.25\n11 21\n\n12.75 19\n")
    np.testing.assert_allclose(read_contour(path), [[10.5, 20.25], [11, 21], [12.75, 19]])
    path.write_text("10.5 20.25\n11 x\n12 13\n")
    with pytest.raises(ContourError, match=r"icontour-manual\.txt:2: not a number"):
        read_contour(path)
    path.write_text("1 2 3\n")
    with pytest.raises(ContourError, match=r":1: expected two numbers"):
        read_contour(path)


def test_labels_for_endo_and_endo_epi(small_phantom) -> None:
    scan = scan_sunnybrook(small_phantom.images_dir, small_phantom.contours_dir)
    diastole = next(i for i in scan.images if i.image_number == 1)
    systole = next(i for i in scan.images if i.image_number == 9)
    endo = contour_labels(diastole, (64, 64))
    assert set(np.unique(endo)) == {0, 1}
    both = contour_labels(diastole, (64, 64), "endo,epi")
    assert set(np.unique(both)) == {0, 1, 2}
    np.testing.assert_array_equal(both == 1, endo == 1)
    assert contour_labels(systole, (64, 64), "endo,epi") is None  # no o-contour at ES
    assert contour_labels(systole, (64, 64)) is not None
    with pytest.raises(InputError, match="unknown Sunnybrook classes"):
        contour_labels(diastole, (64, 64), "rv")
