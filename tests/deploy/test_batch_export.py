"""Results folders, NIfTI geometry, areas, failures that do not stop a batch, evaluation."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from dlp.deploy.batch import run_batch
from dlp.deploy.inputs import collect_inputs, load_input


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def mixed_folder(tmp_path, trained_model) -> Path:
    """Two phantom DICOMs, a PNG of a third slice, a corrupt DICOM and a notes file."""
    folder = tmp_path / "drop"
    folder.mkdir()
    for path in trained_model.val_images[:2]:
        shutil.copy(path, folder / path.name)
    volume = load_input(collect_inputs([trained_model.val_images[2]])[0])
    Image.fromarray(np.clip(volume.array[0] / 16, 0, 255).astype(np.uint8)).save(
        folder / "slice.png")
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_gives_one_result_per_file_and_lists_the_corrupt_one(
    session, mixed_folder, tmp_path
) -> None:
    out = tmp_path / "out"
    items = collect_inputs([mixed_folder], group_series=False)
    seen = []
    report = run_batch(session, items, out, on_result=seen.append)
    assert sorted(i.name for i in items) == sorted(
        [p.stem for p in mixed_folder.glob("*.dcm")] + ["slice"])
    assert [r.item.name for r in report.failures] == ["broken"]
    assert "broken.dcm" in report.failures[0].error
    assert len(seen) == 4  # every input reported as it finished
    for result in report.succeeded:
        folder = out / result.item.name
        mask = np.asarray(Image.open(folder / "mask.png"))
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 1}
        assert (folder / "overlay.png").is_file()
        assert (folder / "measurements.csv").is_file()
    # DICOM inputs also get a DICOM SEG that references their source image
    import pydicom

    dicom_result = next(r for r in report.succeeded if r.item.path.suffix == ".dcm")
    seg = pydicom.dcmread(out / dicom_result.item.name / "segmentation.dcm")
    source = pydicom.dcmread(dicom_result.item.path, stop_before_pixels=True)
    assert seg.Modality == "SEG"
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    failures = _read_csv(out / "failures.csv")
    assert [f["input"] for f in failures] == ["broken"]
    rows = _read_csv(out / "measurements.csv")
    assert {r["input"] for r in rows} == {r.item.name for r in report.succeeded}


def test_areas_equal_pixel_count_times_spacing(session, trained_model, tmp_path) -> None:
    item = collect_inputs(trained_model.val_images[:1])[0]
    report = run_batch(session, [item], tmp_path / "out")
    result = report.results[0]
    volume = load_input(item)
    sy, sx = volume.spacing[1:]
    mask = np.asarray(Image.open(tmp_path / "out" / item.name / "mask.png"))
    (row,) = _read_csv(tmp_path / "out" / item.name / "measurements.csv")
    assert int(row["pixels"]) == int((mask == 1).sum()) > 0
    assert float(row["area_mm2"]) == pytest.approx((mask == 1).sum() * sy * sx, rel=1e-5)
    assert result.rows[0]["class"] == "left ventricle"


def test_nifti_volume_keeps_the_input_affine(session, trained_model, tmp_path) -> None:
    slices = [load_input(i).array[0] for i in collect_inputs(trained_model.val_images[:3])]
    affine = np.array([[-0.9, 0.1, 0.0, 40.0], [0.05, 0.95, 0.0, -12.0],
                       [0.0, 0.0, 6.0, 7.5], [0, 0, 0, 1]])
    data = np.stack(slices).transpose(2, 1, 0).astype(np.int16)
    source = tmp_path / "stack.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), source)
    report = run_batch(session, collect_inputs([source]), tmp_path / "out")
    assert not report.failures, report.failures[0].error
    labels = nib.load(tmp_path / "out" / "stack" / "labels.nii.gz")
    np.testing.assert_allclose(labels.affine, nib.load(source).affine, atol=1e-5)
    assert labels.shape == data.shape
    # one mask per slice and a volume row per class
    assert len(list((tmp_path / "out" / "stack").glob("mask_s*.png"))) == 3
    rows = _read_csv(tmp_path / "out" / "stack" / "measurements.csv")
    volume_row = next(r for r in rows if r["slice"] == "all")
    counts = (np.asarray(labels.dataobj) == 1).sum()
    assert float(volume_row["volume_ml"]) == pytest.approx(counts * 0.9 * 0.95 * 6 / 1000,
                                                           rel=0.02)


def test_evaluation_against_sunnybrook_contours(session, trained_model, tmp_path) -> None:
    items = collect_inputs([trained_model.val_case_dir], group_series=False)
    report = run_batch(session, items, tmp_path / "out",
                       ground_truth=trained_model.contours_dir)
    evaluation = report.evaluation
    assert len(evaluation.rows) == len(items) == 8
    mean, std = evaluation.summary("dice")
    assert std[1] >= 0
    assert mean[1] == pytest.approx(trained_model.val_dice, rel=1e-6)
    worst = evaluation.worst_first("dice", 1)
    assert worst[0].dice[1] == min(r.dice[1] for r in evaluation.rows)
    assert evaluation.confusion.sum() == 8 * 64 * 64
    table = _read_csv(tmp_path / "out" / "evaluation.csv")
    assert table[-1]["image"] == "std" and table[-2]["image"] == "mean"
    assert float(table[-2]["dice_left ventricle"]) == pytest.approx(mean[1], rel=1e-4)
    assert (tmp_path / "out" / "confusion_matrix.csv").is_file()
    # the per-input CSV now carries Dice and Hausdorff too
    rows = _read_csv(tmp_path / "out" / items[0].name / "measurements.csv")
    assert rows[0]["dice"] and rows[0]["hausdorff_mm"]


def test_cancel_stops_between_inputs(session, trained_model, tmp_path) -> None:
    from dlp.progress import CancelToken

    token = CancelToken()
    items = collect_inputs(trained_model.val_images[:4])
    report = run_batch(session, items, tmp_path / "out", cancel=token,
                       on_result=lambda r: token.cancel())
    # Input 2 is segmented while input 1 is written: when the cancel arrives it may be
    # finished (then it is written too), input 3 is never started.
    assert report.cancelled and len(report.results) in (1, 2)
    assert len(_read_csv(tmp_path / "out" / "measurements.csv")) == len(report.results)
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert written == sorted(r.item.name for r in report.results)


def test_a_cine_series_is_one_volume_with_a_seg_per_phase(session, trained_model,
                                                          tmp_path) -> None:
    import pydicom

    items = collect_inputs([trained_model.val_case_dir])
    assert len(items) == 1 and items[0].is_series
    report = run_batch(session, items, tmp_path / "out")
    (result,) = report.succeeded
    folder = result.files.folder
    assert len(result.files.masks) == 8 and (folder / "labels.nii.gz").is_file()
    assert [p.name for p in result.files.dicom_segs] == ["segmentation_1.dcm",
                                                         "segmentation_2.dcm"]
    referenced = set()
    for path in result.files.dicom_segs:
        seg = pydicom.dcmread(path)
        for series in seg.ReferencedSeriesSequence:
            referenced |= {r.ReferencedSOPInstanceUID for r in series.ReferencedInstanceSequence}
    sources = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
               for p in trained_model.val_case_dir.glob("*.dcm")}
    assert referenced == sources


def test_dicom_seg_is_built_from_the_headers_read_with_the_images(session, trained_model,
                                                                 tmp_path) -> None:
    """Each file is read once: the SEG needs no second read (the files may be gone)."""
    import pydicom

    from dlp.deploy.export import write_dicom_seg

    case = tmp_path / "case"
    shutil.copytree(trained_model.val_case_dir, case)
    volume = load_input(collect_inputs([case])[0])
    shutil.rmtree(case)
    labels = session.predict_volume(volume).labels
    write_dicom_seg(labels, volume, session.labels, tmp_path / "seg.dcm", frames=[0, 2, 4])
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    referenced = [r.ReferencedSOPInstanceUID for series in seg.ReferencedSeriesSequence
                  for r in series.ReferencedInstanceSequence]
    assert sorted(referenced) == sorted(volume.meta["sop_uids"][i] for i in (0, 2, 4))


def test_series_ground_truth_is_gathered_slice_by_slice(session, trained_model,
                                                        tmp_path) -> None:
    truth = tmp_path / "contours"
    shutil.copytree(trained_model.contours_dir, truth)
    removed = sorted(truth.rglob("*-icontour-manual.txt"))
    case_contours = [p for p in removed
                     if p.parents[2].name.replace("-0", "-") == trained_model.val_case_dir.name]
    case_contours[0].unlink()  # one slice nobody contoured
    items = collect_inputs([trained_model.val_case_dir])
    report = run_batch(session, items, tmp_path / "out", ground_truth=truth)
    (result,) = report.succeeded
    rows = result.rows
    slice_rows = [r for r in rows if isinstance(r["slice"], int)]
    missing = [r for r in slice_rows if np.isnan(r["dice"])]
    assert len(slice_rows) == 8 and len(missing) == 1
    assert (result.truth == 255).all(axis=(1, 2)).sum() == 1
    # a cine series: one volume per cardiac phase, not a sum over the cycle
    phases = [r for r in rows if not isinstance(r["slice"], int)]
    assert [r["slice"] for r in phases] == ["all (phase 1)", "all (phase 2)"]
    assert sum(r["pixels"] for r in phases) == sum(r["pixels"] for r in slice_rows)
    assert all(r["dice"] > trained_model.val_dice - 0.15 for r in phases)
    assert report.evaluation.rows[0].dice[1] > trained_model.val_dice - 0.1


def _seg_mask(seg_path: Path, source_uids: list[str], shape: tuple[int, int]) -> np.ndarray:
    """The SEG's label map per source image, read back with highdicom (class = segment)."""
    import highdicom as hd

    seg = hd.seg.segread(seg_path)
    out = np.zeros((len(source_uids), *shape), dtype=np.uint8)
    numbers = seg.get_segment_numbers()
    for number in numbers:
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=source_uids, segment_numbers=[number],
            assert_missing_frames_are_empty=True)
        out[pixels[..., 0] > 0] = number
    return out


def test_dicom_seg_reads_back_as_the_mask(session, trained_model, tmp_path) -> None:
    import pydicom

    image = trained_model.val_images[0]
    report = run_batch(session, collect_inputs([image]), tmp_path / "out")
    (result,) = report.succeeded
    folder = result.files.folder
    mask = np.asarray(Image.open(folder / "mask.png"))
    assert mask.sum() > 0
    source = pydicom.dcmread(image, stop_before_pixels=True)
    seg_path = folder / "segmentation.dcm"
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.SegmentSequence[0].SegmentLabel == "left ventricle"
    np.testing.assert_array_equal(_seg_mask(seg_path, [source.SOPInstanceUID], mask.shape)[0],
                                  mask)


def test_seg_building_caches_highdicoms_iod_lookups(session, trained_model, tmp_path) -> None:
    """Building a SEG installs the cache, and it gives highdicom's own answers (half a
    SEG's time was these table scans, repeated for every source image)."""
    from highdicom import _standard_utils as standard
    from pydicom.uid import MRImageStorage, SegmentationStorage

    run_batch(session, collect_inputs(trained_model.val_images[:2]), tmp_path / "out")
    lookup = standard.is_attribute_in_iod
    assert getattr(lookup, "dlp_memoized", False)
    for attribute, uid, exclude in [("NumberOfFrames", MRImageStorage, None),
                                    ("NumberOfFrames", SegmentationStorage, None),
                                    ("PixelData", MRImageStorage, ["IconImageSequence"]),
                                    ("NoSuchKeyword", MRImageStorage, None)]:
        assert lookup(attribute, uid, exclude) == lookup.uncached(attribute, uid, exclude)
    assert lookup("NumberOfFrames", MRImageStorage) is False
    assert lookup("NumberOfFrames", SegmentationStorage) is True


def test_a_dicom_series_gives_nifti_labels_on_its_world_grid(session, trained_model,
                                                             tmp_path) -> None:
    from dlp.data.readers import read_dicom_series

    # one cine phase: a plain stack of 4 short-axis slices
    series = tmp_path / "series"
    series.mkdir()
    phase = sorted(trained_model.val_case_dir.glob("*.dcm"))[::2]
    for path in phase:
        shutil.copy(path, series / path.name)
    (volume,) = read_dicom_series(series)
    items = collect_inputs([series])
    assert len(items) == 1 and items[0].is_series
    report = run_batch(session, items, tmp_path / "out")
    (result,) = report.succeeded
    nifti = nib.load(result.files.folder / "labels.nii.gz")
    # DICOM's LPS world turned into NIfTI's RAS: x and y flip sign, z stays
    np.testing.assert_allclose(nifti.affine, np.diag([-1, -1, 1, 1]) @ volume.affine, atol=1e-4)
    data = np.asarray(nifti.dataobj).transpose(2, 1, 0)
    masks = [np.asarray(Image.open(p)) for p in result.files.masks]
    np.testing.assert_array_equal(data, np.stack(masks))
    # voxel (col, row, slice) of the first LV pixel lands where the DICOM header puts it
    s, r, c = np.argwhere(data == 1)[0]
    import pydicom

    ds = pydicom.dcmread(volume.meta["files"][s], stop_before_pixels=True)
    ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    lps = ipp + iop[:3] * dc * c + iop[3:] * dr * r
    ras = nifti.affine @ [c, r, s, 1]
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-3)


def _enhanced_mr(sources: list[Path], path: Path, step_mm: float) -> Path:
    """An Enhanced MR multi-frame file of ``sources``' pixels, frames ``step_mm`` apart."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage, generate_uid

    frames = [pydicom.dcmread(p) for p in sources]
    ds = frames[0]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.NumberOfFrames = len(frames)
    ds.PixelData = b"".join(f.PixelData for f in frames)
    measures, orientation, shared = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = ds.PixelSpacing
    measures.SliceThickness = step_mm or 8.0
    orientation.ImageOrientationPatient = ds.ImageOrientationPatient
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    origin = np.asarray(ds.ImagePositionPatient, dtype=float)
    normal = np.cross(np.asarray(ds.ImageOrientationPatient[:3], dtype=float),
                      np.asarray(ds.ImageOrientationPatient[3:], dtype=float))
    per_frame = []
    for k in range(len(frames)):
        position, group = Dataset(), Dataset()
        position.ImagePositionPatient = [float(v) for v in origin + normal * step_mm * k]
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_multi_frame_dicom_is_one_volume_with_its_results(session, trained_model,
                                                            tmp_path) -> None:
    import pydicom

    path = _enhanced_mr(trained_model.val_images[:3], tmp_path / "stack.dcm", 8.0)
    items = collect_inputs([path])
    assert len(items) == 1
    report = run_batch(session, items, tmp_path / "out")
    assert not report.failures, report.failures[0].error
    (result,) = report.succeeded
    assert len(result.files.masks) == 3 and result.files.nifti is not None
    singles = [session.predict_volume(load_input(i)).labels[0]
               for i in collect_inputs(trained_model.val_images[:3])]
    masks = np.stack([np.asarray(Image.open(p)) for p in result.files.masks])
    np.testing.assert_array_equal(masks, np.stack(singles))
    rows = _read_csv(result.files.folder / "measurements.csv")
    assert [r["slice"] for r in rows] == ["1", "2", "3", "all"]
    # one SEG over the three frames, read back frame by frame
    assert [p.name for p in result.files.dicom_segs] == ["segmentation.dcm"]
    import highdicom as hd

    seg = hd.seg.segread(result.files.dicom_segs[0])
    uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    pixels = seg.get_pixels_by_source_frame(uid, [1, 2, 3], segment_numbers=[1],
                                            assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels[..., 0], masks)


def test_a_cine_multi_frame_file_explains_why_it_has_no_seg(session, trained_model,
                                                            tmp_path) -> None:
    path = _enhanced_mr(trained_model.val_images[:2], tmp_path / "cine.dcm", 0.0)
    report = run_batch(session, collect_inputs([path]), tmp_path / "out")
    (result,) = report.succeeded
    assert result.files.dicom_segs == [] and len(result.files.masks) == 2
    (warning,) = result.files.warnings
    assert "share plane positions" in warning and "segmentation.dcm" in warning


def test_a_batch_hands_its_memory_back_unless_asked_to_keep_it(
        session, trained_model, tmp_path, monkeypatch) -> None:
    import dlp.deploy.batch as batch_module

    released: list[int] = []
    monkeypatch.setattr(batch_module, "release_free_memory", lambda: released.append(1))
    items = collect_inputs(trained_model.val_images[:1])
    run_batch(session, items, tmp_path / "a")
    assert released == [1]
    report = run_batch(session, items, tmp_path / "b", release_memory=False)
    assert released == [1]  # kept for the next run
    assert report.succeeded and (tmp_path / "b" / items[0].name / "mask.png").is_file()
