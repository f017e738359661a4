"""dlp.png: the PNGs DLP writes read back pixel for pixel, in Pillow and by the spec."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dlp.png import encode_png, write_png


def _read(payload: bytes) -> tuple[str, np.ndarray]:
    image = Image.open(io.BytesIO(payload))
    image.load()
    return image.mode, np.asarray(image)


@pytest.mark.parametrize(("shape", "mode"), [
    ((256, 256), "L"),
    ((3, 517), "L"),
    ((1, 1), "L"),
    ((64, 48, 3), "RGB"),
    ((7, 5, 4), "RGBA"),
])
def test_pillow_reads_back_every_pixel(shape, mode):
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    read_mode, read = _read(encode_png(pixels))
    assert read_mode == mode
    np.testing.assert_array_equal(read, pixels)


def test_strided_views_are_written_as_their_pixels():
    rgbx = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    view = rgbx[::2, :, :3]  # every other row, colour without the padding byte
    np.testing.assert_array_equal(_read(encode_png(view))[1], view)


def test_chunks_follow_the_spec():
    """Signature, IHDR/IDAT/IEND with correct lengths and CRCs, unfiltered rows."""
    mask = np.zeros((4, 6), dtype=np.uint8)
    mask[1:3, 2:5] = 2
    payload = encode_png(mask)
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(payload):
        (length,) = struct.unpack(">I", payload[offset:offset + 4])
        kind = payload[offset + 4:offset + 8]
        data = payload[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", payload[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        offset += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (6, 4, 8, 0, 0, 0, 0)
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(4, 7)
    assert (rows[:, 0] == 0).all()  # filter type "none" on every row
    np.testing.assert_array_equal(rows[:, 1:], mask)


def test_phantom_overlays_are_smaller_than_pillows_fastest(tmp_path):
    """The point of skipping the row filters: an MR slice's overlay packs tighter."""
    from dlp.data.phantom import generate_phantom
    from dlp.deploy.inputs import collect_inputs, load_input
    from dlp.deploy.overlay import overlay_image

    phantom = generate_phantom(tmp_path, cases=1, slices=2, size=128, seed=5)
    volume = load_input(collect_inputs([sorted(phantom.images_dir.rglob("*.dcm"))[0]])[0])
    image = volume.array[0]
    mask = (image > np.percentile(image, 70)).astype(np.uint8)
    rgb = overlay_image(image, mask, [(0, 0, 0), (255, 0, 0)], volume.window)
    pillow = io.BytesIO()
    Image.fromarray(rgb).save(pillow, format="PNG", compress_level=1)
    assert len(encode_png(rgb)) < pillow.tell()


@pytest.mark.parametrize(("array", "reason"), [
    (np.zeros((4, 4), dtype=np.uint16), "uint16"),
    (np.zeros((4, 4), dtype=np.float32), "float32"),
    (np.zeros((4, 4, 2), dtype=np.uint8), "(4, 4, 2)"),
    (np.zeros((4,), dtype=np.uint8), "(4,)"),
    (np.zeros((0, 4), dtype=np.uint8), "at least one pixel"),
])
def test_unsupported_arrays_are_refused_by_name(array, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        encode_png(array)


def test_write_png_is_atomic(tmp_path):
    target = tmp_path / "mask.png"
    write_png(np.full((5, 5), 3, dtype=np.uint8), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png"]
    assert _read(target.read_bytes())[1].tolist() == [[3] * 5] * 5
    with pytest.raises(ValueError):
        write_png(np.zeros((5, 5), dtype=np.float64), target)
    assert _read(target.read_bytes())[1][0, 0] == 3  # the old file is untouched
