from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.deploy.sliding_window import (
    SlidingWindowInferer,
    importance_map,
    sliding_window_inference,
    tile_grid,
    tile_starts,
)


def test_tiles_cover_the_image_and_stay_inside() -> None:
    assert tile_starts(100, 32, 0.25) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 0.5) == [0]
    covered = np.zeros((70, 50), dtype=int)
    for rs, cs in tile_grid((70, 50), (32, 32), 0.5):
        covered[rs, cs] += 1
    assert covered.min() >= 1


def test_identity_predictor_is_reproduced_exactly() -> None:
    image = torch.rand(2, 3, 45, 70)
    out = sliding_window_inference(image, (16, 16), lambda x: x * 1.0, overlap=0.5)
    torch.testing.assert_close(out, image)


def test_pointwise_net_matches_whole_image_and_small_images_are_padded() -> None:
    conv = torch.nn.Conv2d(1, 2, 1)
    image = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        whole = conv(image)
        inferer = SlidingWindowInferer((24, 24), overlap=0.25, mode="constant")
        torch.testing.assert_close(inferer(image, conv), whole)
        small = torch.rand(1, 1, 10, 13)
        torch.testing.assert_close(inferer(small, conv), conv(small))
    assert "24x24" in inferer.describe()


def test_gaussian_weights_peak_in_the_centre() -> None:
    w = importance_map((9, 9))
    assert w[4, 4] == pytest.approx(1.0)
    assert w[0, 0] < w[4, 4]
    with pytest.raises(ValueError, match="blend mode"):
        importance_map((4, 4), "median")


def test_output_of_the_wrong_size_is_explained() -> None:
    with pytest.raises(ValueError, match="Crop"):
        sliding_window_inference(torch.rand(1, 1, 20, 20), (8, 8), lambda x: x[..., :4, :4])
