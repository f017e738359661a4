"""Class names and colours of a segmentation model (``label.txt``).

The file has one class per line, background first (DIGITS' convention).  A line may
end with a colour, either ``#rrggbb`` or three integers ``r g b`` in 0..255::

    background
    left ventricle  #ff3030
    myocardium 40 200 60

Blank lines and lines starting with ``//`` are ignored.  Classes without a colour
get one from a palette chosen to stay distinguishable on grey MR/CT images.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dlp.errors import InputError
from dlp.fsutil import atomic_write_text

Color = tuple[int, int, int]

#: Colours for classes 1.. (background is drawn transparent); saturated hues that stay
#: visible over grey anatomy and differ for colour-blind readers (Okabe-Ito first).
PALETTE: tuple[Color, ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (255, 60, 60),
    (120, 220, 120),
    (160, 120, 255),
)
BACKGROUND_COLOR: Color = (0, 0, 0)

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


class LabelFileError(InputError):
    """``label.txt`` cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LabelMap:
    """Class names (background first) and one RGB colour per class."""

    names: tuple[str, ...]
    colors: tuple[Color, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError("one colour per class name is required")

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...]) -> LabelMap:
        """Names with palette colours (class 0 is background)."""
        return cls(tuple(names), tuple(default_color(i) for i in range(len(names))))

    @classmethod
    def default(cls, num_classes: int) -> LabelMap:
        """``background, class 1, class 2, …`` when the model comes without a label file."""
        names = ["background"] + [f"class {i}" for i in range(1, num_classes)]
        return cls.from_names(names)

    def to_text(self) -> str:
        lines = [f"{name} #{r:02x}{g:02x}{b:02x}" for name, (r, g, b) in zip(self.names,
                                                                         self.colors, strict=False)]
        return "\n".join(lines) + "\n"


def default_color(index: int) -> Color:
    if index == 0:
        return BACKGROUND_COLOR
    return PALETTE[(index - 1) % len(PALETTE)]


def _split_color(line: str) -> tuple[str, Color | None]:
    tokens = line.split()
    if len(tokens) >= 2 and _HEX.match(tokens[-1]):
        value = int(tokens[-1][1:], 16)
        return " ".join(tokens[:-1]), ((value >> 16) & 255, (value >> 8) & 255, value & 255)
    if len(tokens) >= 4 and all(t.isdigit() for t in tokens[-3:]):
        rgb = tuple(int(t) for t in tokens[-3:])
        if all(0 <= c <= 255 for c in rgb):
            return " ".join(tokens[:-3]), (rgb[0], rgb[1], rgb[2])
        raise ValueError(f"colour {' '.join(tokens[-3:])} is outside 0..255")
    return " ".join(tokens), None


def parse_labels(text: str, source: str = "<string>") -> LabelMap:
    """Parse ``label.txt`` content; raises :class:`LabelFileError` naming the line."""
    names: list[str] = []
    colors: list[Color] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        try:
            name, color = _split_color(line)
        except ValueError as exc:
            raise LabelFileError(f"{source}:{number}: {exc}") from None
        if not name:
            raise LabelFileError(f"{source}:{number}: expected a class name before the colour")
        if name in names:
            raise LabelFileError(f"{source}:{number}: class name {name!r} appears twice")
        names.append(name)
        colors.append(color if color is not None else default_color(len(colors)))
    if len(names) < 2:
        raise LabelFileError(
            f"{source}: expected at least two classes (background first, one per line), "
            f"found {len(names)}"
        )
    return LabelMap(tuple(names), tuple(colors))


def read_labels(path: str | os.PathLike[str]) -> LabelMap:
    """Read a ``label.txt`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelFileError(f"{path}: label file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"{path}: cannot read the label file ({exc})") from None
    return parse_labels(text, str(path))


def write_labels(labels: LabelMap, path: str | os.PathLike[str]) -> None:
    atomic_write_text(path, labels.to_text())
