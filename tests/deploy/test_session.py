from __future__ import annotations

import numpy as np
import pytest

from dlp.deploy.inputs import collect_inputs, load_input


def test_the_trained_model_segments_the_held_out_case(trained_model) -> None:
    # the fixture's training must have learned the bright blood pool
    assert trained_model.val_dice > 0.8, trained_model.val_dice


def test_batched_and_single_slice_predictions_agree(session, trained_model) -> None:
    items = collect_inputs(trained_model.val_images[:3])
    volumes = [load_input(i) for i in items]
    stacked = np.concatenate([v.array for v in volumes])
    batch = np.stack([session.preprocess(s) for s in stacked])
    together = session.predict_array(batch)
    alone = np.concatenate([session.predict_array(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert together.shape == (3, 2, 64, 64)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("size", [40, 100])
def test_other_sizes_follow_the_manifest_resize_policy(session, trained_model, size) -> None:
    from dataclasses import replace

    volume = load_input(collect_inputs(trained_model.val_images[:1])[0])
    from PIL import Image

    big = np.asarray(Image.fromarray(volume.array[0].astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR))
    pred = session.predict_volume(replace(volume, array=big[None]))
    assert pred.labels.shape == (1, size, size)
    assert pred.probabilities.shape == (1, 2, size, size)
    assert "preprocessed to 64x64" in " ".join(pred.notes)
    # the blood pool is still found at the new scale
    small = session.predict_volume(volume).labels[0].mean()
    assert pred.labels[0].mean() == pytest.approx(small, abs=0.03)
