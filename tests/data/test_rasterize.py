"""Polygon rasterisation: a pixel is in the mask iff its centre is inside the polygon."""

from __future__ import annotations

import numpy as np
import pytest

from dlp.data.rasterize import paint_polygon, polygon_mask, polygons_to_labels
from dlp.errors import InputError


def _square(x0: float, y0: float, side: float) -> np.ndarray:
    return np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])


def _centres_inside_circle(cx: float, cy: float, r: float, shape) -> np.ndarray:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return (xs - cx) ** 2 + (ys - cy) ** 2 < r * r


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.25, 0.5), (0.5, 0.5), (0.9, 0.1), (3.3, 7.7)])
@pytest.mark.parametrize("side", [1, 4, 10])
def test_squares_cover_side_squared_pixels_at_any_offset(offset, side) -> None:
    x0, y0 = 5 + offset[0], 6 + offset[1]
    mask = polygon_mask(_square(x0, y0, side), (32, 32))
    assert mask.sum() == side * side
    rows, cols = np.nonzero(mask)
    # exactly the centres (c, r) with x0 <= c < x0 + side, y0 <= r < y0 + side
    assert cols.min() == np.ceil(x0) and rows.min() == np.ceil(y0)


def test_half_pixel_square_hits_only_the_centres_it_contains() -> None:
    assert polygon_mask(_square(2.2, 2.2, 0.5), (8, 8)).sum() == 0
    mask = polygon_mask(_square(1.8, 2.8, 0.5), (8, 8))
    assert mask.sum() == 1 and mask[3, 2]


@pytest.mark.parametrize("centre", [(20.0, 20.0), (20.5, 19.25), (21.3, 18.7)])
@pytest.mark.parametrize("radius", [3.7, 9.5, 15.2])
def test_circles_match_the_centre_rule_and_area(centre, radius) -> None:
    theta = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    polygon = np.stack([centre[0] + radius * np.cos(theta), centre[1] + radius * np.sin(theta)], 1)
    mask = polygon_mask(polygon, (42, 42))
    expected = _centres_inside_circle(*centre, radius, (42, 42))
    # the 4000-gon differs from the circle by < 1e-5 px: only centres that close may differ
    assert (mask != expected).sum() <= 1
    assert abs(mask.sum() - np.pi * radius**2) < 2 * np.pi * radius * 0.5


def test_shared_edges_are_claimed_once_and_order_does_not_matter() -> None:
    left, right = _square(2, 2, 4), _square(6, 2, 4)
    a, b = polygon_mask(left, (12, 12)), polygon_mask(right, (12, 12))
    assert not (a & b).any() and (a | b).sum() == 32
    np.testing.assert_array_equal(polygon_mask(left[::-1], (12, 12)), a)


def test_concave_and_clipped_polygons() -> None:
    # an L shape: 3x3 square minus its top-right 1x1 corner -> 8 centres
    ell = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 1.5], [3.5, 1.5], [3.5, 3.5], [0.5, 3.5]])
    assert polygon_mask(ell, (6, 6)).sum() == 8
    # a polygon partly outside the image is clipped, not wrapped
    mask = polygon_mask(_square(-3.5, -3.5, 6), (5, 5))
    assert mask.sum() == 9 and mask[:3, :3].all()


def test_labels_paint_later_polygons_on_top() -> None:
    outer, inner = _square(1.5, 1.5, 8), _square(3.5, 3.5, 4)
    labels = polygons_to_labels([(outer, 2), (inner, 1)], (12, 12))
    assert (labels == 1).sum() == 16 and (labels == 2).sum() == 64 - 16


def test_bad_polygon_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"\(N, 2\)"):
        polygon_mask(np.zeros((4, 3)), (4, 4))
    assert not polygon_mask(np.zeros((2, 2)), (4, 4)).any()


def test_painting_in_place_sets_exactly_the_mask_pixels() -> None:
    theta = np.linspace(0, 2 * np.pi, 57, endpoint=False)
    polygon = np.stack([30.3 + 11 * np.cos(theta), 8.6 + 14 * np.sin(theta)], 1)  # clipped
    labels = np.full((40, 48), 7, np.uint8)
    paint_polygon(labels, polygon, 3)
    mask = polygon_mask(polygon, (40, 48))
    assert mask.any() and not mask.all()
    np.testing.assert_array_equal(labels, np.where(mask, 3, 7))
