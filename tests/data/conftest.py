"""Shared fixtures of the data tests: one small phantom per session (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.data.phantom import Phantom, generate_phantom


@pytest.fixture(scope="session")
def small_phantom(tmp_path_factory: pytest.TempPathFactory) -> Phantom:
    """4 cases x 3 slices x 2 cine frames of 64x64 images. Do not modify its files."""
    return generate_phantom(tmp_path_factory.mktemp("phantom"), cases=4, slices=3, size=64,
                            seed=3)


@pytest.fixture
def phantom_copy(small_phantom: Phantom, tmp_path: Path) -> Phantom:
    """A private copy of the small phantom that a test may damage."""
    import shutil

    root = tmp_path / "phantom"
    shutil.copytree(small_phantom.root, root)
    return Phantom(root, root / "images", root / "contours", root / "contours" /
                   small_phantom.series_table.name, small_phantom.cases)
