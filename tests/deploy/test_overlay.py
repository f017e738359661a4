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


def test_blend_is_the_alpha_composite_of_every_pixel() -> None:
    from dlp.deploy.overlay import blend

    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (32, 40, 4), dtype=np.uint8)
    layer[rng.random((32, 40)) < 0.5, 3] = 0  # half the pixels uncovered
    layer[0, :, 3] = 255
    alpha = layer[..., 3:4] / 255.0
    expected = np.floor(base * (1 - alpha) + layer[..., :3] * alpha + 0.5)
    result = blend(base, layer)
    assert result.dtype == np.uint8 and result.shape == base.shape
    assert np.abs(result.astype(int) - expected).max() <= 1  # float32 vs float64 rounding
    uncovered = layer[..., 3] == 0
    assert (result[uncovered] == base[uncovered]).all()
    assert (result[0] == layer[0, :, :3]).all()


def test_overlay_image_equals_blending_the_rgba_layer() -> None:
    """The table lookup for grey images gives exactly the general per-pixel blend."""
    rng = np.random.default_rng(5)
    image = rng.normal(300, 80, (24, 30)).astype(np.float32)
    mask = rng.integers(0, 4, (24, 30))
    colors = [(0, 0, 0), (255, 0, 0), (10, 200, 30), (40, 90, 250)]
    window = (300.0, 400.0)
    for opacity, outline_only in ((0.5, False), (0.35, False), (1.0, False), (0.5, True)):
        expected = overlay.blend(overlay.to_display_rgb(image, window),
                                 overlay.overlay_rgba(mask, colors, opacity, outline_only))
        got = overlay.overlay_image(image, mask, colors, window, opacity, outline_only)
        assert got.shape == (24, 30, 3) and got.dtype == np.uint8
        assert (got == expected).all(), (opacity, outline_only)
    hidden = [True, False, True, True]
    expected = overlay.blend(overlay.to_display_rgb(image, window),
                             overlay.overlay_rgba(mask, colors, 0.5, visible=hidden))
    assert (overlay.overlay_image(image, mask, colors, window, visible=hidden) == expected).all()


def test_argb32_words_are_the_same_pictures() -> None:
    """The viewer's words hold the exported overlay's pixels, 0xFFRRGGBB."""
    rng = np.random.default_rng(6)
    image = rng.normal(300, 80, (12, 20)).astype(np.float32)
    mask = rng.integers(0, 3, (12, 20))
    colors = [(0, 0, 0), (255, 0, 0), (10, 200, 30)]
    window = (300.0, 400.0)

    def unpack(words: np.ndarray) -> np.ndarray:
        assert words.dtype == np.uint32 and (words >> 24 == 0xFF).all()  # opaque
        return np.stack([(words >> s) & 0xFF for s in (16, 8, 0)], axis=-1)

    for options in ({}, {"outline_only": True}, {"visible": [True, True, False]}):
        words = overlay.overlay_argb32(image, mask, colors, window, 0.4, **options)
        expected = overlay.overlay_image(image, mask, colors, window, 0.4, **options)
        assert (unpack(words) == expected).all(), options
    alone = unpack(overlay.overlay_argb32(image, None, colors, window))
    assert (alone == overlay.to_display_rgb(image, window)).all()
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)  # a colour image
    assert (unpack(overlay.overlay_argb32(rgb, mask, colors)) ==
            overlay.overlay_image(rgb, mask, colors)).all()
    probability = rng.random((12, 20)).astype(np.float32)
    expected = overlay.blend(overlay.to_display_rgb(image, window),
                             overlay.probability_rgba(probability, (255, 0, 0), 0.5))
    assert (unpack(overlay.probability_argb32(image, probability, (255, 0, 0), window, 0.5))
            == expected).all()
    strongest = overlay.probability_rgba(np.array([[0.0, 1.0]]), (255, 0, 0), 0.5)
    assert strongest[0, :, 3].tolist() == [0, 255]
