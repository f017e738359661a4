"""EarlyRead: a hovering drag's files are read before the drop, once, and only if current."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from dlp.data.readers import ImageReadError
from dlp.deploy.batch import run_batch
from dlp.deploy.early_read import MAX_FILES, EarlyRead
from dlp.deploy.inputs import InputItem, collect_inputs, load_input


class CountingRead:
    def __init__(self) -> None:
        self.paths: list[Path] = []

    def __call__(self, item: InputItem):
        self.paths.append(Path(item.path))
        return load_input(item)


@pytest.fixture
def image(trained_model, tmp_path) -> Path:
    path = tmp_path / "scan.dcm"
    shutil.copy(trained_model.val_images[0], path)
    return path


def test_a_hovering_drags_file_is_read_once_and_handed_to_the_drop(image) -> None:
    counting = CountingRead()
    early = EarlyRead(counting)
    assert early.start([image])
    (item,) = collect_inputs([image])
    volume = early.take()(item)
    np.testing.assert_array_equal(volume.array, load_input(item).array)
    assert counting.paths == [image]
    # taken: a second drop of the same file reads it again
    early.take()(item)
    assert counting.paths == [image, image]
    early.close()


def test_a_file_changed_after_the_drag_entered_is_read_again(image, trained_model) -> None:
    counting = CountingRead()
    early = EarlyRead(counting)
    early.start([image])
    (item,) = collect_inputs([image])
    reader = early.take()
    time.sleep(0.05)
    shutil.copy(trained_model.val_images[1], image)  # another slice under the same name
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    volume = reader(item)
    np.testing.assert_array_equal(volume.array, load_input(item).array)
    assert not np.array_equal(
        volume.array, load_input(collect_inputs([trained_model.val_images[0]])[0]).array)
    assert counting.paths == [image, image]
    early.close()


def test_folders_many_files_and_missing_files_are_left_to_the_drop(image, tmp_path) -> None:
    counting = CountingRead()
    early = EarlyRead(counting)
    assert not early.start([tmp_path])  # a folder may hold thousands of files
    assert not early.start([image] * (MAX_FILES + 1))
    assert not early.start([tmp_path / "gone.dcm"])
    assert not early.start([])
    time.sleep(0.05)
    assert counting.paths == []
    early.close()


def test_an_unreadable_file_fails_at_the_drop_as_it_would_have(tmp_path) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    early = EarlyRead()
    early.start([broken])
    (item,) = collect_inputs([broken])
    with pytest.raises(ImageReadError) as early_error:
        early.take()(item)
    with pytest.raises(ImageReadError) as usual_error:
        load_input(item)
    assert str(early_error.value) == str(usual_error.value)
    early.close()


def test_a_drag_that_left_is_forgotten(image) -> None:
    counting = CountingRead()
    early = EarlyRead(counting)
    early.start([image])
    deadline = time.monotonic() + 10
    while not counting.paths and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counting.paths == [image]  # read while the drag hovered
    early.discard()
    (item,) = collect_inputs([image])
    early.take()(item)
    assert counting.paths == [image, image]  # read again at the drop
    early.close()


def test_the_batch_runner_reads_the_drop_through_the_early_reader(session, image,
                                                                 tmp_path) -> None:
    counting = CountingRead()
    early = EarlyRead(counting)
    early.start([image])
    items = collect_inputs([image])
    report = run_batch(session, items, tmp_path / "out", read_input=early.take())
    assert report.succeeded and not report.failures
    assert counting.paths == [image]
    assert (tmp_path / "out" / items[0].name / "mask.png").is_file()
    early.close()
