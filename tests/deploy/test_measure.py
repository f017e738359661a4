from __future__ import annotations

import math

import numpy as np
import pytest

from dlp.deploy import measure


def test_areas_equal_pixel_count_times_spacing() -> None:
    mask = np.zeros((2, 10, 12), dtype=np.uint8)
    mask[0, 2:5, 3:7] = 1  # 12 px
    mask[1, 0:2, 0:2] = 2  # 4 px
    areas = measure.slice_areas_mm2(mask, 3, (0.5, 1.25))
    assert areas.shape == (2, 3)
    assert areas[0, 1] == pytest.approx(12 * 0.625)
    assert areas[1, 2] == pytest.approx(4 * 0.625)
    assert areas[0].sum() == pytest.approx(120 * 0.625)


def test_volume_in_millilitres() -> None:
    mask = np.zeros((4, 10, 10), dtype=np.uint8)
    mask[:, :5, :] = 1  # 200 voxels
    vol = measure.volumes_ml(mask, 2, (8.0, 1.5, 1.5))
    assert vol[1] == pytest.approx(200 * 8 * 1.5 * 1.5 / 1000)


def test_dice_iou_and_empty_class() -> None:
    truth = np.zeros((8, 8), dtype=np.uint8)
    pred = np.zeros((8, 8), dtype=np.uint8)
    truth[0:4, 0:4] = 1  # 16
    pred[0:4, 0:2] = 1  # 8, all inside
    dice = measure.dice_per_class(pred, truth, 3)
    iou = measure.iou_per_class(pred, truth, 3)
    assert dice[1] == pytest.approx(2 * 8 / 24)
    assert iou[1] == pytest.approx(8 / 16)
    assert math.isnan(dice[2]) and math.isnan(iou[2])


def test_confusion_matrix_ignores_out_of_range_truth() -> None:
    truth = np.array([[0, 1, 255], [1, 1, 0]])
    pred = np.array([[0, 0, 1], [1, 1, 1]])
    m = measure.confusion_matrix(pred, truth, 2)
    assert m.tolist() == [[1, 1], [1, 2]]


def test_hausdorff_of_shifted_square_in_mm() -> None:
    a = np.zeros((20, 20), dtype=bool)
    b = np.zeros((20, 20), dtype=bool)
    a[5:10, 5:10] = True
    b[5:10, 8:13] = True  # shifted 3 columns
    assert measure.hausdorff_distance(a, b) == pytest.approx(3.0)
    assert measure.hausdorff_distance(a, b, (1.0, 2.0)) == pytest.approx(6.0)
    assert math.isnan(measure.hausdorff_distance(a, np.zeros_like(a)))


def test_mean_std_ignores_nan() -> None:
    mean, std = measure.mean_std(np.array([[1.0, np.nan], [3.0, 2.0]]))
    assert mean.tolist() == [2.0, 2.0]
    assert std.tolist() == [1.0, 0.0]


def test_class_counts_for_every_integer_mask_type() -> None:
    from dlp.deploy.measure import class_counts

    for dtype in (np.uint8, np.uint16, np.uint64, np.int32, np.int64):
        mask = np.array([[0, 1, 1], [2, 7, 0]], dtype=dtype)  # 7: beyond the 3 classes
        assert class_counts(mask, 3).tolist() == [2, 2, 1], dtype
    assert class_counts(np.array([[-1, 0, 1]]), 2).tolist() == [1, 1]


@pytest.mark.parametrize("num_classes", [2, 16, 17, 40])  # compared, then bincount
def test_class_counts_of_few_and_many_classes_match_a_plain_count(num_classes) -> None:
    from dlp.deploy.measure import class_counts, slice_class_counts

    rng = np.random.default_rng(num_classes)
    for dtype in (np.uint8, np.int16):
        mask = rng.integers(-3 if dtype == np.int16 else 0, num_classes + 5,
                            size=(4, 30, 20)).astype(dtype)
        expected = [[int((plane == c).sum()) for c in range(num_classes)] for plane in mask]
        assert slice_class_counts(mask, num_classes).tolist() == expected
        assert class_counts(mask, num_classes).tolist() == np.sum(expected, axis=0).tolist()
