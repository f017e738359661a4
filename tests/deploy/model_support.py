"""A small trained model whose phantom Dice is known, shared by the deploy and GUI tests.

Once per test session: generate a Sunnybrook-layout phantom (3 cases x 4 slices x 2
phases at 64x64), train a tiny FCN with the engine on two cases for a few seconds,
and measure its Dice on the third case through :class:`InferenceSession`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 64
BATCH = 8
ITERATIONS = 120

_BODY = """
layer { name: "norm" type: "Power" bottom: "data" top: "norm"
        power_param { scale: 0.00390625 shift: -0.5 } }
layer { name: "conv1" type: "Convolution" bottom: "norm" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1
                            weight_filler { type: "msra" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1
                            weight_filler { type: "msra" } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool1" type: "Pooling" bottom: "conv2" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool1" top: "conv3"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1
                            weight_filler { type: "msra" } } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "up" type: "Deconvolution" bottom: "conv3" top: "up"
        convolution_param { num_output: 8 kernel_size: 4 stride: 2 pad: 1
                            weight_filler { type: "msra" } } }
layer { name: "relu4" type: "ReLU" bottom: "up" top: "up" }
layer { name: "fuse" type: "Concat" bottom: "conv2" bottom: "up" top: "fuse" }
layer { name: "score" type: "Convolution" bottom: "fuse" top: "score"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1
                            weight_filler { type: "msra" } } }
"""


def _input(name: str, n: int) -> str:
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f"input_param {{ shape {{ dim: {n} dim: 1 dim: {SIZE} dim: {SIZE} }} }} }}\n")


TRAIN_NET = ('name: "tiny_fcn"\n' + _input("data", BATCH) + _input("label", BATCH) + _BODY
             + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" '
               'top: "loss" }\n')
DEPLOY_NET = ('name: "tiny_fcn"\n' + _input("data", 1) + _BODY
              + 'layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" }\n')


@dataclass
class TrainedModel:
    """Paths of the trained model and what its Dice on the held-out case is."""

    root: Path
    deploy_net: Path
    weights: Path
    labels: Path
    manifest: Path
    phantom: Path
    val_case_dir: Path           # images of the held-out case
    contours_dir: Path           # ground truth of all cases (Sunnybrook layout)
    val_images: list[Path]
    val_dice: float              # mean per-image Dice of the LV on the held-out case


def _images_and_masks(phantom) -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
    from dlp.data.readers import read_image
    from dlp.deploy.inputs import InputItem
    from dlp.deploy.truth import GroundTruthIndex, load_ground_truth

    index = GroundTruthIndex.scan(phantom.contours_dir)
    found = []
    for case_dir in sorted((phantom.images_dir / "challenge_training").iterdir()):
        for path in sorted(case_dir.glob("*.dcm")):
            volume = read_image(path)
            truth_path = index.find(InputItem(path, path.stem))
            assert truth_path is not None, path
            mask = load_ground_truth(truth_path, volume.array.shape, 2)[0]
            found.append((case_dir.name, path, volume.array[0], mask))
    return found


def _train(samples: list[tuple[np.ndarray, np.ndarray]], weights: Path) -> None:
    import torch

    torch.manual_seed(0)
    # One thread: on two shared cores, two OpenMP threads spin against other processes
    # and train ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _fit(samples, weights)
    finally:
        torch.set_num_threads(threads)


def _fit(samples: list[tuple[np.ndarray, np.ndarray]], weights: Path) -> None:
    import torch

    from dlp.engine.net import Net
    from dlp.engine.weights import write_caffemodel
    from dlp.net.prototxt import parse_net_text

    net = Net(parse_net_text(TRAIN_NET, "train"), phase="TRAIN", seed=0)
    params = [e.tensor for e in net.learnable_params()]
    optimiser = torch.optim.Adam(params, lr=0.01)
    x = torch.from_numpy(np.stack([s[0] for s in samples]).astype(np.float32))
    y = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.float32))
    rng = np.random.default_rng(0)
    for _ in range(ITERATIONS):
        pick = rng.choice(len(samples), BATCH, replace=False)
        xb, yb = x[pick], y[pick]
        if rng.random() < 0.5:  # mirror: a cheap augmentation against over-fitting 16 images
            xb, yb = xb.flip(-1), yb.flip(-1)
        blobs = net({"data": xb, "label": yb})
        loss = net.loss(blobs)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    write_caffemodel(net, weights)


_TRAINED: list[TrainedModel] = []


def get_trained_model(tmp_path_factory) -> TrainedModel:
    """Train once per test session, whichever test folder asks first (deploy or gui)."""
    if not _TRAINED:
        _TRAINED.append(_build_trained_model(tmp_path_factory))
    return _TRAINED[0]


def _build_trained_model(tmp_path_factory) -> TrainedModel:
    from dlp.data.manifest import Manifest
    from dlp.data.phantom import generate_phantom
    from dlp.data.preprocess import Preprocessing, preprocess_slice
    from dlp.deploy.inputs import collect_inputs
    from dlp.deploy.labels import LabelMap, write_labels
    from dlp.deploy.measure import dice_per_class
    from dlp.deploy.session import InferenceSession

    root = tmp_path_factory.mktemp("deploy_model")
    phantom = generate_phantom(root / "phantom", cases=3, slices=4, size=SIZE, seed=1)
    prep = Preprocessing(size=(SIZE, SIZE), size_policy="resize", intensity="minmax")
    manifest = Manifest(shape=[1, SIZE, SIZE], dtype="uint8", classes=["background", "lv"],
                        splits={}, preprocessing=prep, mean_file=None)
    dataset = root / "dataset"
    dataset.mkdir()
    manifest_path = manifest.save(dataset)

    samples = _images_and_masks(phantom)
    cases = sorted({case for case, *_ in samples})
    val_case = cases[-1]
    train = [(preprocess_slice(img, prep), mask[None]) for case, _, img, mask in samples
             if case != val_case]
    weights = root / "tiny_fcn.caffemodel"
    _train(train, weights)
    deploy_net = root / "deploy.prototxt"
    deploy_net.write_text(DEPLOY_NET)
    labels = root / "label.txt"
    write_labels(LabelMap.from_names(["background", "left ventricle"]), labels)

    session = InferenceSession.load(deploy_net, weights, labels, manifest=manifest_path)
    val = [(path, mask) for case, path, _, mask in samples if case == val_case]
    pred = []
    for item in collect_inputs([p for p, _ in val]):
        from dlp.deploy.inputs import load_input

        pred.append(session.predict_volume(load_input(item)).labels[0])
    # Mean per-image Dice, as the Evaluate view reports it.
    val_dice = float(np.mean([dice_per_class(p, m, 2)[1] for p, (_, m) in zip(pred, val,
                                                                             strict=True)]))
    session.close()
    return TrainedModel(
        root=root, deploy_net=deploy_net, weights=weights, labels=labels,
        manifest=manifest_path, phantom=phantom.root,
        val_case_dir=phantom.images_dir / "challenge_training" / val_case,
        contours_dir=phantom.contours_dir, val_images=[p for p, _ in val], val_dice=val_dice,
    )
