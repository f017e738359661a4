"""Readers on real DICOM test files (pydicom's), phantom series, NIfTI and Pillow images."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from dlp.data.readers import (
    DicomReader,
    DicomSeriesReader,
    ImageReadError,
    NiftiReader,
    PillowReader,
    read_dicom_series,
    read_image,
    read_images,
    reader_for,
    write_nifti_labels,
)


def _raw(name: str) -> np.ndarray:
    return pydicom.dcmread(get_testdata_file(name)).pixel_array


# --------------------------------------------------------------------------- DICOM files

def test_ct_values_are_hounsfield_units_after_rescale() -> None:
    volume = read_image(get_testdata_file("CT_small.dcm"))
    assert volume.format == "dicom" and volume.array.shape == (1, 128, 128)
    assert volume.meta["rescale"] == [(1.0, -1024.0)] and volume.meta["signed"]
    np.testing.assert_array_equal(volume.array[0], _raw("CT_small.dcm").astype(np.float32) - 1024)
    assert volume.array.min() == -896.0  # the darkest stored value, 128, in HU
    assert volume.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    assert volume.meta["modality"] == "CT" and volume.meta["space"] == "LPS"
    # the affine places voxel (0, 0, 0) at ImagePositionPatient
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    np.testing.assert_allclose(volume.affine[:3, 3], [float(v) for v in ds.ImagePositionPatient])


def test_mr_window_spacing_and_nonunit_rescale_slope() -> None:
    mr = read_image(get_testdata_file("MR_small.dcm"))
    assert mr.window == (600.0, 1600.0) and mr.spacing[1:] == pytest.approx((0.3125, 0.3125))
    unci = read_image(get_testdata_file("MR2_UNCI.dcm"))
    slope, intercept = unci.meta["rescale"][0]
    assert slope != 1.0
    np.testing.assert_allclose(
        unci.array[0], _raw("MR2_UNCI.dcm") * np.float32(slope) + np.float32(intercept),
        rtol=1e-6,
    )


def test_multi_frame_and_compressed_variants_decode_to_the_same_pixels() -> None:
    reference = read_image(get_testdata_file("emri_small.dcm"))
    assert reference.array.shape == (10, 64, 64) and reference.meta["frames"] == 10
    assert reference.spacing[0] == pytest.approx(1.2)  # SpacingBetweenSlices
    for variant in ("emri_small_RLE.dcm", "emri_small_big_endian.dcm",
                    "emri_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_2k_lossless.dcm"):
        np.testing.assert_array_equal(read_image(get_testdata_file(variant)).array,
                                      reference.array)


def test_enhanced_functional_groups_give_spacing_positions_and_rescale(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    for keyword in ("SpacingBetweenSlices", "PixelSpacing", "ImagePositionPatient"):
        if keyword in ds:
            delattr(ds, keyword)
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.75]
    measures.SliceThickness = 3.0
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 2, -10
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for index in range(10):
        position = Dataset()
        position.ImagePositionPatient = [-5.0, 7.0, 20.0 + 2.5 * index]
        frame = Dataset()
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    volume = read_image(_save(ds, tmp_path / "enhanced.dcm"))
    assert volume.spacing == pytest.approx((2.5, 0.5, 0.75))
    np.testing.assert_allclose(volume.affine @ [0, 0, 3, 1], [-5.0, 7.0, 27.5, 1])
    np.testing.assert_array_equal(volume.array, _raw("emri_small.dcm") * 2.0 - 10)


def test_monochrome1_is_inverted_so_bright_means_high(tmp_path: Path) -> None:
    path = get_testdata_file("MR_small.dcm")
    normal = read_image(path)
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.WindowCenter, ds.WindowWidth = 600, 1600
    inverted = DicomReader().read(_save(ds, tmp_path / "mono1.dcm"))[0]
    low, high = -(2 ** 15), 2 ** 15 - 1  # MR_small: 16 bits stored, signed
    np.testing.assert_array_equal(inverted.array, (low + high) - normal.array)
    assert inverted.meta["inverted"] and inverted.window == ((low + high) - 600, 1600)


def test_real_monochrome1_radiograph() -> None:
    volume = read_image(get_testdata_file("RG3_UNCR.dcm"))
    raw = _raw("RG3_UNCR.dcm")
    bits = pydicom.dcmread(get_testdata_file("RG3_UNCR.dcm"), stop_before_pixels=True).BitsStored
    assert volume.meta["photometric"] == "MONOCHROME1"
    np.testing.assert_array_equal(volume.array[0, :50, :50], (2**bits - 1) - raw[:50, :50])


def _save(ds, path: Path) -> Path:
    ds.save_as(path)
    return path


def test_missing_decoder_names_the_file_and_the_package(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 64])
    ds["PixelData"].VR = "OB"
    path = _save(ds, tmp_path / "htj2k.dcm")
    with pytest.raises(ImageReadError, match=r"htj2k\.dcm: .*High-Throughput JPEG 2000.*"
                                             r"pylibjpeg-openjpeg"):
        read_image(path)


def test_non_dicom_and_truncated_files_get_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"hello, not a DICOM file")
    with pytest.raises(ImageReadError, match=r"junk\.dcm: not a DICOM file"):
        read_image(junk)
    good = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.dcm: "):
        read_image(cut)
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "absent.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageReadError, match="unknown image format"):
        read_image(tmp_path / "notes.txt")


def test_dicom_without_suffix_is_found_by_content(tmp_path: Path) -> None:
    target = tmp_path / "IMG0001"
    shutil.copy(get_testdata_file("CT_small.dcm"), target)
    assert isinstance(reader_for(target), DicomReader)
    assert read_image(target).array.shape == (1, 128, 128)


# --------------------------------------------------------------------------- DICOM series

def test_phantom_series_is_sorted_along_the_normal_with_spacing(small_phantom) -> None:
    folder = small_phantom.images_dir / "challenge_training" / "SC-HF-I-1"
    volume = read_image(folder)
    assert isinstance(reader_for(folder), DicomSeriesReader)
    assert volume.array.shape == (6, 64, 64) and volume.meta["frames_per_position"] == 2
    assert volume.spacing[0] == pytest.approx(10.0, abs=1e-3)
    normal = np.cross(volume.meta["orientation"][:3], volume.meta["orientation"][3:])
    heights = [np.dot(p, normal) for p in volume.meta["positions"]]
    assert heights == sorted(heights)
    # the affine's slice column spans the slice gap along the normal
    np.testing.assert_allclose(np.linalg.norm(volume.affine[:3, 2]), 10.0, atol=1e-3)
    np.testing.assert_allclose(volume.affine[:3, 2] / 10.0, normal, atol=1e-5)
    one = read_image(volume.meta["files"][3])
    np.testing.assert_array_equal(volume.array[3], one.array[0])


def test_series_keeps_each_file_header_in_slice_order_without_pixels(small_phantom) -> None:
    volume = read_image(small_phantom.images_dir / "challenge_training" / "SC-HF-I-1")
    headers = volume.headers
    assert len(headers) == volume.num_slices == 6
    assert [h.SOPInstanceUID for h in headers] == volume.meta["sop_uids"]
    assert all("PixelData" not in h for h in headers)
    assert volume.slice_volume(4).headers == [headers[4]]
    single = read_image(volume.meta["files"][0])
    assert len(single.headers) == 1 and "PixelData" not in single.headers[0]


def test_reversed_file_order_still_sorts_by_position(small_phantom, tmp_path: Path) -> None:
    source = small_phantom.images_dir / "challenge_training" / "SC-N-2"
    files = sorted(source.iterdir())
    for index, path in enumerate(files):  # names now sort opposite to anatomy
        shutil.copy(path, tmp_path / f"z{len(files) - index:03d}.dcm")
    original, shuffled = read_image(source), read_image(tmp_path)
    np.testing.assert_array_equal(original.array, shuffled.array)


def test_mixed_series_are_separated_and_sizes_checked(small_phantom, tmp_path: Path) -> None:
    for case in ("SC-HF-I-1", "SC-HYP-1"):
        for path in (small_phantom.images_dir / "challenge_training" / case).iterdir():
            shutil.copy(path, tmp_path / path.name)
    (tmp_path / "README").write_text("not DICOM, ignored")
    volumes = read_dicom_series(tmp_path)
    assert [v.meta["series_number"] for v in volumes] == [4, 550]
    assert all(v.array.shape == (6, 64, 64) for v in volumes)
    with pytest.raises(ImageReadError, match="holds 2 DICOM series"):
        read_image(tmp_path)

    odd = pydicom.dcmread(tmp_path / "IM-0004-0001.dcm")
    odd.Rows = odd.Columns = 32
    odd.PixelData = np.zeros((32, 32), np.uint16).tobytes()
    odd.SOPInstanceUID = pydicom.uid.generate_uid()
    odd.save_as(tmp_path / "IM-0004-0999.dcm")
    with pytest.raises(ImageReadError, match=r"IM-0004-0999\.dcm: image size 32x32 differs "
                                             r"from IM-0004-0001\.dcm"):
        read_dicom_series(tmp_path)


# --------------------------------------------------------------------------- NIfTI

def _oblique_affine() -> np.ndarray:
    affine = np.array([[0.0, -1.2, 0.1, 30.0], [1.1, 0.0, 0.0, -20.0],
                       [0.0, 0.05, 2.5, 12.0], [0, 0, 0, 1]])
    return affine


def test_nifti_affine_and_spacing_survive_read_slice_write(tmp_path: Path) -> None:
    data = np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4)  # (i, j, k)
    nib.save(nib.Nifti1Image(data, _oblique_affine()), tmp_path / "ct.nii.gz")
    volume = read_image(tmp_path / "ct.nii.gz")
    assert isinstance(reader_for(tmp_path / "ct.nii.gz"), NiftiReader)
    assert volume.array.shape == (4, 6, 5)  # (S=k, H=j, W=i)
    assert volume.array[2, 3, 1] == data[1, 3, 2]
    np.testing.assert_allclose(volume.affine, _oblique_affine())
    zooms = nib.load(tmp_path / "ct.nii.gz").header.get_zooms()
    assert volume.spacing == pytest.approx((zooms[2], zooms[1], zooms[0]))

    one = volume.slice_volume(2)
    labels = (one.array > 60).astype(np.uint8)
    write_nifti_labels(labels, one, tmp_path / "labels.nii.gz")
    back = read_image(tmp_path / "labels.nii.gz")
    np.testing.assert_array_equal(back.array, labels)
    np.testing.assert_allclose(back.affine, one.affine, atol=1e-5)
    assert back.spacing == pytest.approx(one.spacing, abs=1e-5)
    # the slice's voxel (0, 0, 0) is the full volume's voxel (0, 0, 2)
    np.testing.assert_allclose(one.affine @ [0, 0, 0, 1], volume.affine @ [0, 0, 2, 1])
    with pytest.raises(ImageReadError, match="do not match the reference"):
        write_nifti_labels(np.zeros((2, 6, 5), np.uint8), one, tmp_path / "bad.nii")


def test_dicom_labels_are_written_in_ras(small_phantom, tmp_path: Path) -> None:
    volume = read_image(small_phantom.images_dir / "challenge_training" / "SC-HF-I-1")
    labels = (volume.array > volume.array.mean()).astype(np.uint8)
    write_nifti_labels(labels, volume, tmp_path / "seg.nii")
    back = nib.load(tmp_path / "seg.nii")
    lps = volume.affine @ [7, 5, 3, 1]
    ras = back.affine @ [7, 5, 3, 1]
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-4)
    np.testing.assert_array_equal(read_image(tmp_path / "seg.nii").array, labels)


def test_4d_nifti_gives_one_volume_per_frame(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((4, 5, 3, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "cine.nii")
    frames = read_images(tmp_path / "cine.nii")
    assert len(frames) == 2 and frames[1].meta["frame"] == 1
    np.testing.assert_array_equal(frames[1].array, data[..., 1].transpose(2, 1, 0))
    with pytest.raises(ImageReadError, match="holds 2 time frames"):
        read_image(tmp_path / "cine.nii")


# --------------------------------------------------------------------------- Pillow

def test_png_tiff_jpeg_8_and_16_bit(tmp_path: Path) -> None:
    eight = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10)
    sixteen = (np.arange(12 * 10) * 500).astype(np.uint16).reshape(12, 10)
    Image.fromarray(eight).save(tmp_path / "a.png")
    Image.fromarray(sixteen).save(tmp_path / "b.png")
    Image.fromarray(sixteen).save(tmp_path / "c.tif")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 250
    Image.fromarray(rgb).save(tmp_path / "d.jpg", quality=95)
    a, b, c, d = (read_image(tmp_path / n) for n in ("a.png", "b.png", "c.tif", "d.jpg"))
    np.testing.assert_array_equal(a.array[0], eight)
    assert b.array.dtype == np.uint16 and b.array.max() == sixteen.max()
    np.testing.assert_array_equal(b.array[0], sixteen)
    np.testing.assert_array_equal(c.array[0], sixteen)
    assert (a.format, c.format, d.format) == ("png", "tiff", "jpeg")
    assert d.array.shape == (1, 8, 8, 3) and d.is_rgb and abs(int(d.array[0, 4, 4, 0]) - 250) < 4
    assert isinstance(reader_for(tmp_path / "a.png"), PillowReader)


def test_multipage_tiff_and_palette_masks(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((6, 7), v, np.uint8)) for v in (1, 2, 3)]
    pages[0].save(tmp_path / "stack.tiff", save_all=True, append_images=pages[1:])
    stack = read_image(tmp_path / "stack.tiff")
    assert stack.array.shape == (3, 6, 7) and stack.array[2, 0, 0] == 3
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    palette.save(tmp_path / "mask.png")
    np.testing.assert_array_equal(read_image(tmp_path / "mask.png").array[0], [[0, 1], [2, 1]])


@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding:UserWarning")
def test_fast_slice_reader_agrees_with_the_full_reader(small_phantom, tmp_path: Path) -> None:
    from dlp.data.readers.dicom import read_dicom_slice

    # byte orders and VR encodings the header fast path must read (or leave to pydicom)
    files = [get_testdata_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "MR2_UNCI.dcm",
                                            "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                                            "MR_small_expb.dcm", "MR_small_padded.dcm")]
    files += sorted((small_phantom.images_dir / "challenge_training" / "SC-N-2").iterdir())[:2]
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    files.append(_save(ds, tmp_path / "ct_mono1.dcm"))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.BitsStored = 12  # signed 12-bit in 16: the unused high bits must be sign-extended
    ds.HighBit = 11
    files.append(_save(ds, tmp_path / "mr12.dcm"))
    for path in files:
        full = DicomReader().read(Path(path))[0].array[0]
        np.testing.assert_array_equal(read_dicom_slice(Path(path)), full, err_msg=str(path))
        reference = pydicom.dcmread(path).pixel_array.astype(np.float32)
        if "mono1" not in str(path) and "UNCI" not in str(path) and "CT_small" not in str(path):
            np.testing.assert_array_equal(read_dicom_slice(Path(path)), reference)


def test_series_order_uses_positions_whether_parsed_or_raw() -> None:
    """Slices sort along the normal from headers fresh from a file (raw bytes) and from
    elements pydicom has already converted (MultiValue) alike; malformed ones fall back
    to the instance number."""
    import pydicom

    from dlp.data.readers.dicom_series import _normal, _sort_key

    ds = pydicom.Dataset()
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, -12.5]
    ds.InstanceNumber = 7
    normal = _normal(ds)
    assert normal.tolist() == [0.0, 0.0, 1.0]
    assert _sort_key(ds, normal) == (-12.5, 7)
    ds.ImagePositionPatient = [0, 0]  # malformed: two values
    assert _sort_key(ds, normal) == (7.0, 7)
    ds.ImageOrientationPatient = [1, 0, 0]
    assert _normal(ds) is None
