from __future__ import annotations

import numpy as np

from dlp.deploy import overlay


def test_window_maps_center_to_mid_grey_and_clips() -> None:
    image = np.array([[0.0, 1000.0, 2000.0, 5000.0]])
    grey = overlay.apply_window(image, center=1000, width=2000)
    assert grey.tolist() == [[0, 127, 255, 255]]


def test_auto_window_ignores_a_single_hot_pixel() -> None:
    image = np.tile(np.linspace(0, 100, 100), (100, 1))
    image[0, 0] = 1e6
    center, width = overlay.auto_window(image)
    assert 40 < center < 60 and width < 200


def test_overlay_background_transparent_and_opacity() -> None:
    mask = np.zeros((6, 6), dtype=np.uint8)
    mask[2:4, 2:4] = 1
    rgba = overlay.overlay_rgba(mask, [(0, 0, 0), (255, 0, 0)], opacity=0.5)
    assert rgba[0, 0, 3] == 0
    assert rgba[2, 2].tolist() == [255, 0, 0, 128]
    grey = np.full((6, 6), 100.0)
    out = overlay.overlay_image(grey, mask, [(0, 0, 0), (255, 0, 0)], window=(100, 200))
    assert out[0, 0].tolist() == [127, 127, 127]
    assert out[2, 2, 0] > out[2, 2, 1]


def test_outline_only_draws_the_border_ring() -> None:
    mask = np.zeros((9, 9), dtype=np.uint8)
    mask[2:7, 2:7] = 1
    edge = overlay.outline(mask)
    assert edge.sum() == 16  # 5x5 square: ring of 16 pixels
    assert not edge[4, 4]
    rgba = overlay.overlay_rgba(mask, [(0, 0, 0), (0, 255, 0)], outline_only=True)
    assert (rgba[..., 3] > 0).sum() == 16


def test_hidden_class_is_not_drawn() -> None:
    mask = np.array([[1, 2]])
    colors = [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    rgba = overlay.overlay_rgba(mask, colors, visible=[True, False, True])
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] > 0
