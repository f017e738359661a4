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


def test_deploy_net_derived_from_the_training_net_predicts_the_same(session, trained_model,
                                                                     tmp_path) -> None:
    from dlp.deploy.config import DeployConfig
    from tests.deploy.model_support import TRAIN_NET

    train_net = tmp_path / "train_val.prototxt"
    train_net.write_text(TRAIN_NET)
    config = DeployConfig(derive_from_train=True, train_net=str(train_net),
                          weights=str(trained_model.weights), manifest=str(trained_model.manifest))
    assert config.problems() == {}
    derived = config.load_session()
    assert derived.output_name == "prob" and derived.outputs_probabilities
    assert derived.labels.names == ("background", "lv")  # from the manifest's classes
    volume = load_input(collect_inputs(trained_model.val_images[:1])[0])
    np.testing.assert_allclose(derived.predict_volume(volume).probabilities,
                               session.predict_volume(volume).probabilities, atol=1e-5)
    derived.close()


def test_weights_of_another_net_are_refused_with_the_reason(trained_model, tmp_path) -> None:
    from dlp.deploy.session import InferenceSession, ModelLoadError

    other = tmp_path / "deploy.prototxt"
    other.write_text(trained_model.deploy_net.read_text().replace("num_output: 16",
                                                                    "num_output: 12"))
    with pytest.raises(ModelLoadError, match=r"do not fit the net: .*conv3"):
        InferenceSession.load(other, trained_model.weights)


def test_without_a_resize_policy_large_images_are_tiled(trained_model) -> None:
    from dataclasses import replace

    from dlp.deploy.session import InferenceSession

    raw = InferenceSession.load(trained_model.deploy_net, trained_model.weights)  # no manifest
    assert "sliding-window tiling" in raw.size_policy()
    volume = load_input(collect_inputs(trained_model.val_images[:1])[0])
    big = np.pad(volume.array, ((0, 0), (20, 30), (10, 40)), mode="reflect")
    pred = raw.predict_volume(replace(volume, array=big))
    assert pred.labels.shape == (1, 114, 114)
    assert any("tiled with sliding window 64x64" in n for n in pred.notes)
    raw.close()


def test_a_colour_image_for_a_greyscale_model_is_explained(trained_model) -> None:
    from dataclasses import replace

    from dlp.deploy.session import InferenceSession, ModelMismatchError

    raw = InferenceSession.load(trained_model.deploy_net, trained_model.weights)
    volume = load_input(collect_inputs(trained_model.val_images[:1])[0])
    rgb = np.repeat(volume.array[..., None], 3, axis=-1)
    with pytest.raises(ModelMismatchError, match=r"RGB image gives 3 channel.*expects 1"):
        raw.predict_volume(replace(volume, array=rgb))
    raw.close()


def test_a_fully_connected_net_refuses_other_sizes_with_the_reason(tmp_path) -> None:
    from dataclasses import replace

    from dlp.data.readers import ImageVolume
    from dlp.deploy.session import InferenceSession, ModelMismatchError
    from dlp.engine.net import Net
    from dlp.engine.weights import write_caffemodel
    from dlp.net.prototxt import parse_net_text

    text = """name: "fc_seg"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 128 weight_filler { type: "xavier" } } }
layer { name: "shape" type: "Reshape" bottom: "fc" top: "score"
        reshape_param { shape { dim: 0 dim: 2 dim: 8 dim: 8 } } }
"""
    net_path, weights = tmp_path / "deploy.prototxt", tmp_path / "fc.caffemodel"
    net_path.write_text(text)
    write_caffemodel(Net(parse_net_text(text, "fc"), phase="TEST", seed=0), weights)
    session = InferenceSession.load(net_path, weights)
    assert "not fully convolutional, so images must be 8x8" in session.size_policy()
    volume = ImageVolume(array=np.zeros((1, 8, 8), np.float32), spacing=(1.0, 1.0, 1.0),
                         affine=np.eye(4), window=None, source=tmp_path / "scan.png",
                         format="png", meta={})
    assert session.predict_volume(volume).labels.shape == (1, 8, 8)
    with pytest.raises(ModelMismatchError, match=r"scan\.png: the image is 12x12 .* takes 8x8 "
                                                 r"and has fully connected layers"):
        session.predict_volume(replace(volume, array=np.zeros((1, 12, 12), np.float32)))
    session.close()


def test_a_colour_image_through_the_dataset_policy_is_noted(session, trained_model) -> None:
    from dataclasses import replace

    volume = load_input(collect_inputs(trained_model.val_images[:1])[0])
    rgb = np.repeat(volume.array[..., None], 3, axis=-1)
    pred = session.predict_volume(replace(volume, array=rgb))
    assert any("colour image converted to grey" in n for n in pred.notes)
    np.testing.assert_array_equal(pred.labels, session.predict_volume(volume).labels)


def test_class_labels_is_argmax_with_first_index_on_ties() -> None:
    from dlp.deploy.session import class_labels

    rng = np.random.default_rng(2)
    for classes in (2, 3, 5):
        probs = rng.random((2, classes, 16, 12)).astype(np.float32)
        probs[0, 1, :3] = probs[0, 0, :3]  # ties go to the lower class, as argmax does
        probs[1, -1, :4] = probs[1, -2, :4]
        labels = class_labels(probs)
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, probs.argmax(axis=1))


def _fc_session(tmp_path):
    """A tiny session (8x8 fully connected net) of its own, to close or drop freely."""
    from dlp.deploy.session import InferenceSession
    from dlp.engine.net import Net
    from dlp.engine.weights import write_caffemodel
    from dlp.net.prototxt import parse_net_text

    text = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "score" type: "Convolution" bottom: "data" top: "score"
        convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "xavier" } } }
"""
    net_path, weights = tmp_path / "deploy.prototxt", tmp_path / "tiny.caffemodel"
    net_path.write_text(text)
    write_caffemodel(Net(parse_net_text(text, "tiny"), phase="TEST", seed=0), weights)
    return InferenceSession.load(net_path, weights)


def test_every_forward_runs_in_the_sessions_one_engine_thread(tmp_path) -> None:
    import threading

    session = _fc_session(tmp_path)
    ran_in: list[str] = []
    forward = session._forward

    def recording(batch):
        ran_in.append(threading.current_thread().name)
        return forward(batch)

    session._forward = recording
    inputs = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    here = session.predict_array(inputs)
    there: list[np.ndarray] = []
    caller = threading.Thread(target=lambda: there.append(session.predict_array(inputs)))
    caller.start()
    caller.join()
    np.testing.assert_array_equal(here, there[0])
    assert len(ran_in) == 2 and len(set(ran_in)) == 1
    assert ran_in[0].startswith("dlp-engine"), ran_in
    session.close()


def test_a_closed_session_refuses_to_segment_with_the_reason(tmp_path) -> None:
    from dlp.deploy.session import ModelLoadError

    session = _fc_session(tmp_path)
    session.close()
    with pytest.raises(ModelLoadError, match=r"deploy\.prototxt: the session is closed"):
        session.predict_array(np.zeros((1, 1, 8, 8), np.float32))


def test_a_session_dropped_without_close_ends_its_engine_thread(tmp_path) -> None:
    import gc
    import threading
    import time
    import weakref

    session = _fc_session(tmp_path)
    session.predict_array(np.zeros((1, 1, 8, 8), np.float32))
    (ident,) = session._engine_threads
    gone = weakref.ref(session)
    del session
    gc.collect()
    assert gone() is None  # the engine thread does not keep the session (and its net) alive
    deadline = time.monotonic() + 10
    while any(t.ident == ident for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.ident == ident for t in threading.enumerate())
