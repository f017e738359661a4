"""Names and tables of the Sunnybrook Cardiac MR LV Segmentation Challenge layout.

Shared by the importer (:mod:`dlp.data.sunnybrook`) and the phantom generator
(:mod:`dlp.data.phantom`), which writes the same quirks the importer resolves:

- contour case folders are zero-padded (``SC-HF-I-01``), image case folders are not
  (``SC-HF-I-1``);
- contour files are always named ``IM-0001-NNNN-{i,o,p1,p2}contour-manual.txt`` while
  the image is ``IM-<SERIES>-<NNNN>.dcm`` of the case's short-axis cine series, which
  only the case→series table below tells.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from dlp.errors import InputError

#: (group, case number) -> short-axis series number, from the challenge's documentation.
_TABLE_TEXT = {
    "SC-HF-I": "1:0004 2:0106 4:0116 5:0156 6:0180 7:0209 8:0226 9:0241 10:0024 11:0043 "
               "12:0062 40:0134",
    "SC-HF-NI": "3:0379 4:0501 7:0523 11:0270 12:0286 13:0304 14:0331 15:0359 31:0401 "
                "33:0424 34:0446 36:0474",
    "SC-HYP": "1:0550 3:0650 6:0767 7:0007 8:0796 9:0003 10:0579 11:0601 12:0629 37:0702 "
              "38:0734 40:0755",
    "SC-N": "2:0898 3:0915 5:0963 6:0981 7:1009 9:1031 10:0851 11:0878 40:0944",
}

#: canonical (unpadded) case name, e.g. ``"SC-HF-I-1"`` -> series number ``4``.
DEFAULT_SERIES_TABLE: dict[str, int] = {
    f"{group}-{int(case)}": int(series)
    for group, text in _TABLE_TEXT.items()
    for case, series in (item.split(":") for item in text.split())
}

CONTOUR_KINDS = ("i", "o", "p1", "p2")

_CASE_RE = re.compile(r"^SC-(HF-I|HF-NI|HYP|N)-0*(\d+)$", re.IGNORECASE)
CONTOUR_FILE_RE = re.compile(
    r"^IM-(\d{4})-(\d{4})-(i|o|p1|p2)contour-manual\.txt$", re.IGNORECASE
)
IMAGE_FILE_RE = re.compile(r"^IM-(\d{4})-(\d{4})\.dcm$", re.IGNORECASE)


def canonical_case(folder_name: str) -> str | None:
    """``"SC-HF-I-01"``/``"sc-hf-i-1"`` -> ``"SC-HF-I-1"``; None for other names."""
    match = _CASE_RE.match(folder_name.strip())
    if match is None:
        return None
    return f"SC-{match.group(1).upper()}-{int(match.group(2))}"


def contour_case_folder(case: str) -> str:
    """The zero-padded contour folder name of a canonical case: ``SC-HF-I-1`` -> ``SC-HF-I-01``."""
    prefix, number = case.rsplit("-", 1)
    return f"{prefix}-{int(number):02d}"


def image_file_name(series: int, image_number: int) -> str:
    return f"IM-{series:04d}-{image_number:04d}.dcm"


def contour_file_name(image_number: int, kind: str) -> str:
    return f"IM-0001-{image_number:04d}-{kind}contour-manual.txt"


def read_series_table(path: str | os.PathLike[str]) -> dict[str, int]:
    """A case→series table from a CSV (``case,series`` per line) or JSON object file.

    Case names may be padded or not (``SC-HF-I-01`` or ``SC-HF-I-1``); a header line
    ``case,series`` is allowed.  Errors name the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the case→series table: {exc.strerror}") from exc
    table: dict[str, int] = {}
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object {{\"case\": series, ...}}")
        rows = [(str(k), str(v), 1) for k, v in raw.items()]
    else:
        rows = [
            (row[0], row[1] if len(row) > 1 else "", line)
            for line, row in enumerate(csv.reader(text.splitlines()), start=1)
            if row and row[0].strip() and not row[0].lstrip().startswith("#")
        ]
    for name, series_text, line in rows:
        case = canonical_case(name)
        if case is None:
            if name.strip().lower() == "case":
                continue  # header
            raise InputError(
                f"{path}:{line}: {name!r} is not a Sunnybrook case name (e.g. SC-HF-I-1)"
            )
        try:
            table[case] = int(str(series_text).strip())
        except ValueError as exc:
            raise InputError(
                f"{path}:{line}: series of {case} must be a number; got {series_text!r}"
            ) from exc
    return table


def format_series_table(table: dict[str, int]) -> str:
    """The CSV text :func:`read_series_table` reads."""
    lines = ["case,series"] + [f"{case},{series:04d}" for case, series in table.items()]
    return "\n".join(lines) + "\n"
