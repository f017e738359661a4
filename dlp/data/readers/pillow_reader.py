"""PNG, JPEG and TIFF (8/16-bit, grayscale, palette or RGB; multi-page TIFF) via Pillow.

Palette images keep their indices (label masks are often palette PNGs); RGBA drops
alpha; multi-page TIFFs become one slice per page.  Plain images carry no geometry:
spacing is 1 mm unless the file records a resolution in pixels per cm/inch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlp.data.readers.base import (
    ImageReader,
    ImageReadError,
    ImageVolume,
    affine_from_geometry,
    read_header,
)

_MAGIC = {
    b"\x89PNG": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
_FORMATS = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff", "MPO": "jpeg"}


def _page_array(image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("L", "P", "I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image)
        if mode.startswith("I;16"):
            array = array.astype(np.uint16)
        return array
    if mode == "1":
        return np.asarray(image).astype(np.uint8)
    if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "PA"):
        if mode == "LA":
            return np.asarray(image.convert("L"))
        return np.asarray(image.convert("RGB"))
    raise ImageReadError(path, f"unsupported image mode {mode!r}")


class PillowReader(ImageReader):
    format_name = "png"
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def matches_content(self, path: Path) -> bool:
        header = read_header(path, 8)
        return any(header.startswith(magic) for magic in _MAGIC)

    def read(self, path: Path) -> list[ImageVolume]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                fmt = _FORMATS.get(image.format or "", "png")
                pages = []
                for index in range(getattr(image, "n_frames", 1)):
                    image.seek(index)
                    pages.append(_page_array(image, path))
                dpi = image.info.get("dpi")
        except ImageReadError:
            raise
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageReadError(path, f"not a readable image ({exc})") from exc
        shapes = {page.shape for page in pages}
        if len(shapes) != 1:
            raise ImageReadError(path, f"pages differ in size: {sorted(shapes)}")
        array = np.stack(pages)
        sy = sx = 1.0
        if dpi and all(float(d) > 1 for d in dpi):
            sx, sy = 25.4 / float(dpi[0]), 25.4 / float(dpi[1])
        spacing = (1.0, sy, sx)
        return [ImageVolume(
            array=array, spacing=spacing, affine=affine_from_geometry(spacing), window=None,
            source=path, format=fmt,
            meta={"space": "pixel", "mode": image.mode, "dtype": str(array.dtype),
                  "pages": len(pages)},
        )]
