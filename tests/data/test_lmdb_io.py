"""Datum LMDBs and mean files: what Caffe writes we read, what we write Caffe reads."""

from __future__ import annotations

import threading
from pathlib import Path

import lmdb
import numpy as np
import pytest

from dlp.data.lmdb_io import (
    DatumDB,
    DatumError,
    DatumWriter,
    array_to_datum,
    datum_to_array,
    decode_datum,
    encode_datum,
    encode_mean_binaryproto,
    read_mean_binaryproto,
    write_mean_binaryproto,
)
from dlp.proto import caffe_pb2


def _caffe_style_datum(array: np.ndarray, label: int) -> bytes:
    """Bytes as Caffe's C++ writes them: fields set one by one, float_data unpacked."""
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = array.shape
    datum.label = label
    if array.dtype == np.uint8:
        datum.data = array.tobytes()
    else:
        datum.float_data.extend(array.astype(np.float32).ravel().tolist())
    return datum.SerializeToString()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_our_bytes_parse_as_caffe_datum(dtype) -> None:
    rng = np.random.default_rng(1)
    array = (rng.random((3, 5, 7)) * 200 - (50 if dtype in (np.int16, np.float32) else 0))
    array = array.astype(dtype)
    datum = caffe_pb2.Datum.FromString(encode_datum(array, label=7))
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 5, 7, 7)
    if dtype == np.uint8:
        assert datum.data == array.tobytes() and not datum.float_data
    else:
        np.testing.assert_array_equal(np.array(datum.float_data), array.ravel().astype(np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_caffe_written_datum_decodes(dtype) -> None:
    array = np.arange(2 * 6 * 4).reshape(2, 6, 4).astype(dtype) * 3
    decoded, label = decode_datum(_caffe_style_datum(array, label=-2))
    assert label == -2
    assert decoded.dtype == (np.uint8 if dtype == np.uint8 else np.float32)
    np.testing.assert_array_equal(decoded, array)


def test_message_level_round_trip_and_2d_input() -> None:
    image = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    datum = array_to_datum(image, label=1)
    assert isinstance(datum, caffe_pb2.Datum)
    back = datum_to_array(datum)
    assert back.shape == (1, 3, 4)
    np.testing.assert_array_equal(back[0], image)


def test_png_encoded_datum_keeps_bgr_order() -> None:
    bgr = np.zeros((3, 4, 4), np.uint8)
    bgr[0] = 200  # blue plane
    blob = encode_datum(bgr, encoding="png")
    datum = caffe_pb2.Datum.FromString(blob)
    assert datum.encoded
    from io import BytesIO

    from PIL import Image

    rgb = np.asarray(Image.open(BytesIO(datum.data)))
    assert rgb[0, 0].tolist() == [0, 0, 200]  # the file itself is RGB
    np.testing.assert_array_equal(decode_datum(blob)[0], bgr)


def test_bad_datums_get_one_clear_error() -> None:
    bad = caffe_pb2.Datum(channels=1, height=4, width=4, data=b"\0" * 10).SerializeToString()
    with pytest.raises(DatumError, match=r"10 bytes.*needs 16"):
        decode_datum(bad)
    with pytest.raises(DatumError, match="truncated"):
        decode_datum(encode_datum(np.zeros((1, 4, 4), np.float32))[:-5])
    with pytest.raises(DatumError, match=r"\(C, H, W\)"):
        encode_datum(np.zeros((1, 1, 2, 2)))


def test_writer_grows_map_and_reader_reads_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [(rng.random((1, 64, 64)) * 4095).astype(np.uint16) for _ in range(40)]
    # 40 x 16 KiB float Datums do not fit a 64 KiB map: it must grow, not fail
    with DatumWriter(tmp_path / "db", map_size=64 << 10, batch_bytes=100_000) as writer:
        for index, array in enumerate(arrays):
            assert writer.append(array, label=index % 3) == f"{index:09d}"
        assert writer.map_size > 64 << 10

    db = DatumDB(tmp_path / "db")
    assert len(db) == 40
    assert db.keys() == [f"{i:09d}" for i in range(40)]
    np.testing.assert_array_equal(db.get("000000017"), arrays[17])
    np.testing.assert_array_equal(db.get(17), arrays[17])
    assert db.get_with_label(b"000000005")[1] == 2
    stacked = db.get_many(["000000001", "000000003"])
    assert stacked.shape == (2, 1, 64, 64)
    np.testing.assert_array_equal(stacked[1], arrays[3])
    key, _first, label = db.first()
    assert key == "000000000" and label == 0
    for (_key, array, _label), expected in zip(db, arrays, strict=True):
        np.testing.assert_array_equal(array, expected)
    with pytest.raises(DatumError, match="no record with key '000000099'"):
        db.get("000000099")
    db.close()


def test_reader_reads_a_database_written_by_plain_lmdb(tmp_path: Path) -> None:
    """As `convert_imageset` would leave it: Caffe-serialised Datums, lmdb defaults."""
    env = lmdb.open(str(tmp_path / "caffe_db"), map_size=1 << 24)
    images = [np.full((3, 8, 8), i * 10, np.uint8) for i in range(5)]
    with env.begin(write=True) as txn:
        for i, image in enumerate(images):
            txn.put(f"{i:08d}_img{i}.png".encode(), _caffe_style_datum(image, label=i))
    env.close()
    db = DatumDB(tmp_path / "caffe_db")
    assert [label for _, _, label in db] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(db.get("00000004_img4.png"), images[4])


def test_reader_is_safe_from_several_threads(tmp_path: Path) -> None:
    with DatumWriter(tmp_path / "db") as writer:
        for i in range(50):
            writer.append(np.full((1, 16, 16), i, np.uint8))
    db = DatumDB(tmp_path / "db")
    failures: list[str] = []

    def read_all(offset: int) -> None:
        for round_ in range(4):
            for i in range(50):
                index = (i + offset + round_) % 50
                if int(db.get(index)[0, 0, 0]) != index:
                    failures.append(f"{index}")

    threads = [threading.Thread(target=read_all, args=(k * 7,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_missing_or_non_lmdb_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatumError, match="not found"):
        DatumDB(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatumError, match=r"no data\.mdb"):
        DatumDB(tmp_path / "empty")


def test_mean_binaryproto_round_trip_and_caffe_layout(tmp_path: Path) -> None:
    mean = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 7
    write_mean_binaryproto(mean, tmp_path / "mean.binaryproto")
    blob = caffe_pb2.BlobProto.FromString((tmp_path / "mean.binaryproto").read_bytes())
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 2, 3, 4)
    np.testing.assert_allclose(read_mean_binaryproto(tmp_path / "mean.binaryproto"), mean)

    shaped = caffe_pb2.BlobProto()
    shaped.shape.dim.extend([1, 1, 2, 2])
    shaped.data.extend([1, 2, 3, 4])
    (tmp_path / "shaped.binaryproto").write_bytes(shaped.SerializeToString())
    assert read_mean_binaryproto(tmp_path / "shaped.binaryproto").shape == (1, 2, 2)

    (tmp_path / "junk.binaryproto").write_bytes(b"\xff\xff\xff")
    with pytest.raises(DatumError, match=r"junk\.binaryproto"):
        read_mean_binaryproto(tmp_path / "junk.binaryproto")


@pytest.mark.parametrize("shape", [(1, 5, 7), (3, 2, 2), (1, 256, 256)])
def test_mean_bytes_are_what_protobuf_writes(shape) -> None:
    mean = np.random.default_rng(1).normal(100, 30, shape).astype(np.float32)
    blob = caffe_pb2.BlobProto(num=1, channels=shape[0], height=shape[1], width=shape[2])
    blob.data.extend(mean.reshape(-1).tolist())
    assert encode_mean_binaryproto(mean) == blob.SerializeToString()


def test_unsynced_commits_still_hold_everything_after_close(tmp_path: Path) -> None:
    arrays = [np.full((1, 32, 32), i, np.uint8) for i in range(50)]
    with DatumWriter(tmp_path / "db", map_size=16 << 10, batch_bytes=5_000, background=True,
                     sync_commits=False) as writer:
        for array in arrays:
            writer.append(array)
    with DatumDB(tmp_path / "db") as db:
        assert [int(a[0, 0, 0]) for _, a, _ in db] == list(range(50))


def test_one_database_open_twice_shares_the_environment(tmp_path: Path) -> None:
    with DatumWriter(tmp_path / "db") as writer:
        writer.append(np.full((1, 4, 4), 9, np.uint8))
    first, second = DatumDB(tmp_path / "db"), DatumDB(tmp_path / "db")
    assert second.get(0)[0, 0, 0] == 9
    first.close()
    assert second.get(0)[0, 0, 0] == 9  # still open for the other reader
    second.close()
    with DatumDB(tmp_path / "db") as third:
        assert len(third) == 1


def test_background_commits_keep_order_and_report_failures(tmp_path: Path) -> None:
    arrays = [np.full((1, 32, 32), i, np.uint16) for i in range(30)]
    with DatumWriter(tmp_path / "db", map_size=32 << 10, batch_bytes=10_000,
                     background=True) as writer:
        for array in arrays:
            writer.append(array)
    with DatumDB(tmp_path / "db") as db:
        assert [int(a[0, 0, 0]) for _, a, _ in db] == list(range(30))

    writer = DatumWriter(tmp_path / "db2", batch_bytes=1, background=True)
    writer.put_bytes("000000000", b"\x08\x01")
    writer._env.close()  # the disk vanished under the writer, say
    with pytest.raises((DatumError, lmdb.Error)):
        writer.put_bytes("000000001", b"\x08\x01")
        writer.flush()
