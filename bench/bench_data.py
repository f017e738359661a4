"""Data benchmarks (issue 5), each a ratio of two timings taken in the same run.

- ``data.build_over_decode``: building the phantom's Sunnybrook dataset with the
  default options, as ``python -m dlp dataset sunnybrook`` does (scan, DICOM decode,
  contour rasterisation, preprocessing, LMDB write and sync, manifest), over just
  decoding the same DICOM files with pydicom (``dcmread`` + ``pixel_array``, one
  process); target <= 1.5.  The builder prepares slices in worker processes when at
  least two cores are idle, so on a quiet machine the ratio may be below 1: the build
  then uses both cores where the reference uses one.  The detail line says how many
  workers each timed build used.  ``data.build1_over_decode`` forces one process
  (``--workers 1``); ``data.build16_over_decode`` is the default build of a 16-bit
  (float_data) dataset, four times the bytes to write and sync.
- ``data.read_rate_over_fcn8s_step_rate``: how many 256x256 16-bit slices
  ``DatumDB`` reads in the time netlib's FCN-8s (built by ``dlp.engine.net.Net``,
  fed by its Data layers from the same kind of dataset) takes for one training step
  (batch 1); target >= 20.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from bench.common import Figure, interleaved_ratio

ROOT = Path(__file__).resolve().parents[1]


def _build_vs_decode(work: Path) -> tuple[list[Figure], Path]:
    import pydicom

    from dlp.data.builder import BuildOptions, build_dataset
    from dlp.data.phantom import generate_phantom
    from dlp.data.preprocess import Preprocessing
    from dlp.data.sources import SunnybrookSource
    from dlp.data.sunnybrook import scan_sunnybrook

    # 8 cases x 8 slices x 2 frames = 128 slices: per-build fixed costs weigh as in real use
    phantom = generate_phantom(work / "phantom", cases=8, slices=8, size=256, seed=0)
    images = [item.image_path
              for item in scan_sunnybrook(phantom.images_dir, phantom.contours_dir).images]
    source = SunnybrookSource(phantom.images_dir, phantom.contours_dir)
    builds = iter(range(1_000_000))

    def decode() -> None:
        for path in images:
            pydicom.dcmread(path).pixel_array  # noqa: B018 - decoding is the work

    figures = []
    variants = [
        # what `dlp dataset sunnybrook` builds by default: 256x256, min-max, uint8 Datums
        ("data.build_over_decode", BuildOptions(val_percent=25), 1.5),
        ("data.build1_over_decode", BuildOptions(val_percent=25, workers=1), None),
        ("data.build16_over_decode", BuildOptions(
            preprocessing=Preprocessing(intensity="none", bits=16), val_percent=25), None),
    ]
    for name, options, target in variants:
        workers_used: list[int] = []

        def build(options: BuildOptions = options, workers_used: list[int] = workers_used
                  ) -> None:
            # a fresh folder each time: replacing the previous build is not building
            report = build_dataset(source, work / f"build{next(builds)}", options)
            workers_used.append(report.workers)

        # 11 interleaved pairs: on a shared machine the median needs them to settle
        ratio, t_build, t_decode = interleaved_ratio(build, decode, repeats=11)
        used = ", ".join(f"{count}x {'in-process' if w == 0 else f'{w} workers'}"
                         for w, count in sorted(Counter(workers_used[1:]).items()))
        figures.append(Figure(
            name, ratio, target, "<=",
            f"{len(images)} slices 256x256: build {len(images) / t_build:.0f} slices/s "
            f"({used}), pydicom decode only {len(images) / t_decode:.0f} slices/s "
            "(one process)",
        ))
    out = work / "dataset16"
    build_dataset(source, out, variants[2][1])
    return figures, out


def _fcn8s_step(dataset: Path):
    """One FCN-8s training step (forward, loss, backward, SGD update) on ``dataset``."""
    import torch

    from dlp.engine.net import Net
    from dlp.net.prototxt import read_net

    net = Net(read_net(ROOT / "netlib" / "fcn8s" / "train_val.prototxt"), "TRAIN",
              root=dataset, seed=0)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-10)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        blobs = net.forward()
        net.loss(blobs).backward()
        optimizer.step()

    return step, net


def _read_vs_fcn8s(dataset16: Path, work: Path) -> Figure:
    from dlp.data.builder import BuildOptions, build_dataset
    from dlp.data.lmdb_io import DatumDB
    from dlp.data.sources import SunnybrookSource

    # FCN-8s scales its input by 1/256: train it on the 8-bit variant of the phantom
    phantom = work / "phantom"
    dataset8 = work / "dataset8"
    build_dataset(SunnybrookSource(phantom / "images", phantom / "contours"), dataset8,
                  BuildOptions(val_percent=25))
    db = DatumDB(dataset16 / "train_db" / "features")
    keys = db.keys()
    assert db.first()[1].shape == (1, 256, 256)

    def read_all() -> None:
        for key in keys:
            db.get(key)

    step, net = _fcn8s_step(dataset8)
    try:
        # one FCN-8s step takes tens of seconds on 2 cores: one timed repeat is plenty
        _, t_read, t_step = interleaved_ratio(read_all, step, repeats=1)
    finally:
        net.close()
    per_slice = t_read / len(keys)
    return Figure(
        "data.read_rate_over_fcn8s_step_rate", t_step / per_slice, 20, ">=",
        f"DatumDB {1 / per_slice:.0f} slices/s (256x256 float_data) vs FCN-8s "
        f"{1 / t_step:.2f} steps/s (batch 1, dlp.engine.net.Net)",
    )


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        build_figures, dataset16 = _build_vs_decode(work)
        return [*build_figures, _read_vs_fcn8s(dataset16, work)]
