from __future__ import annotations

from pathlib import Path

import pytest

from dlp.deploy.labels import LabelFileError, LabelMap, parse_labels, read_labels, write_labels


def test_names_and_colours_in_both_notations() -> None:
    labels = parse_labels("background\nleft ventricle #ff3030\n\nmyocardium 40 200 60\n")
    assert labels.names == ("background", "left ventricle", "myocardium")
    assert labels.colors[1] == (255, 48, 48)
    assert labels.colors[2] == (40, 200, 60)


def test_classes_without_colour_get_distinct_palette_colours() -> None:
    labels = parse_labels("background\na\nb\nc\n")
    assert len(set(labels.colors[1:])) == 3
    assert labels.colors[0] == (0, 0, 0)


def test_numbers_inside_a_name_are_not_taken_for_a_colour() -> None:
    assert parse_labels("bg\nsegment 7\n").names == ("bg", "segment 7")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("background\n", "at least two classes"),
        ("bg\nlv\nlv\n", ":3: class name 'lv' appears twice"),
        ("bg\nlv 10 300 20\n", ":2: colour 10 300 20 is outside 0..255"),
    ],
)
def test_bad_label_files_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(LabelFileError, match=expected):
        parse_labels(text, "label.txt")


def test_round_trip_and_missing_file(tmp_path: Path) -> None:
    labels = LabelMap.from_names(["background", "lv"])
    write_labels(labels, tmp_path / "label.txt")
    assert read_labels(tmp_path / "label.txt") == labels
    with pytest.raises(LabelFileError, match="not found"):
        read_labels(tmp_path / "missing.txt")
