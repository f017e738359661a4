"""dlp.deploy.dicom_encoding: sequences encoded here are byte for byte pydicom's."""

from __future__ import annotations

import io
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dlp.deploy.dicom_encoding import encode_items, save_with_encoded_sequences


def _pydicom_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out)  # as save_with_encoded_sequences (and highdicom) call it
    return out.getvalue()


def _fast_bytes(ds: Dataset) -> tuple[bytes, int]:
    out = io.BytesIO()
    count = save_with_encoded_sequences(ds, out)
    return out.getvalue(), count


def _image(syntax=ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.preamble = b"\0" * 128
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Phantom^Test"
    ds.Rows, ds.Columns, ds.BitsAllocated = 4, 4, 8
    ds.PixelData = bytes(range(16))
    frames = []
    for index in range(3):
        frame = Dataset()
        source = Dataset()
        source.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        source.ReferencedSOPInstanceUID = generate_uid()  # odd and even lengths
        source.SpatialLocationsPreserved = "YES"
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "121322", "DCM"
        code.CodeMeaning = "Source image for image processing operation"
        source.PurposeOfReferenceCodeSequence = Sequence([code])
        derivation = Dataset()
        derivation.SourceImageSequence = Sequence([source])
        frame.DerivationImageSequence = Sequence([derivation])
        content = Dataset()
        content.DimensionIndexValues = [1, index + 1]
        content.FrameAcquisitionDuration = 12.5
        frame.FrameContentSequence = Sequence([content])
        position = Dataset()
        position.ImagePositionPatient = ["-33.2926", -84.264, 207.0 + index]
        frame.PlanePositionSequence = Sequence([position])
        segment = Dataset()
        segment.ReferencedSegmentNumber = 1
        frame.SegmentIdentificationSequence = Sequence([segment])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    return ds


def test_a_seg_like_data_set_is_written_byte_for_byte_as_pydicom_does() -> None:
    ds = _image()
    expected = _pydicom_bytes(ds)
    written, count = _fast_bytes(ds)
    assert count == 1
    assert written == expected
    assert _pydicom_bytes(ds) == expected  # the data set is as it was


def test_undefined_lengths_and_empty_values_are_kept() -> None:
    ds = _image()
    ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
    ds.PerFrameFunctionalGroupsSequence[0].is_undefined_length_sequence_item = True
    ds.PerFrameFunctionalGroupsSequence[1].FrameContentSequence[0].StackID = ""
    ds.PerFrameFunctionalGroupsSequence[2].FrameContentSequence[0].InStackPositionNumber = None
    written, count = _fast_bytes(ds)
    assert count == 1 and written == _pydicom_bytes(ds)


def test_a_sequence_with_non_ascii_text_is_left_to_pydicom() -> None:
    ds = _image()
    ds.SpecificCharacterSet = "ISO_IR 100"
    other = Dataset()
    other.CodeMeaning = "Myokard (linker Ventrikel), Größe"
    ds.AnatomicRegionSequence = Sequence([other])
    assert encode_items(ds.AnatomicRegionSequence) is None
    written, count = _fast_bytes(ds)
    assert count == 1  # the per-frame groups only
    assert written == _pydicom_bytes(ds)


def test_another_transfer_syntax_is_written_by_pydicom_alone() -> None:
    ds = _image(ImplicitVRLittleEndian)
    written, count = _fast_bytes(ds)
    assert count == 0 and written == _pydicom_bytes(ds)


def test_the_segs_dlp_writes_are_pydicoms_bytes(session, trained_model, tmp_path,
                                                 monkeypatch) -> None:
    import dlp.deploy.export as export
    from dlp.deploy.batch import predict_item
    from dlp.deploy.inputs import collect_inputs

    written = []

    def both_ways(seg, path):
        count = save_with_encoded_sequences(seg, path)
        written.append((count, Path(path).read_bytes(), _pydicom_bytes(seg)))
        return count

    monkeypatch.setattr(export, "save_with_encoded_sequences", both_ways)
    result = predict_item(session, collect_inputs(trained_model.val_images[:1])[0])
    export.export_prediction(result.prediction, session.labels, tmp_path / "out",
                             result.item.name, result.rows)
    (count, fast, reference), = written
    assert count >= 2  # at least the per-frame groups and the source image list
    assert fast == reference
