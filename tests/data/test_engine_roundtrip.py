"""What the builder writes, the engine's Data layers read back identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlp.data.builder import BuildOptions, build_dataset
from dlp.data.lmdb_io import DatumDB
from dlp.data.preprocess import Preprocessing
from dlp.data.sources import SunnybrookSource

torch = pytest.importorskip("torch")

PROBE_NET = """
name: "probe"
layer { name: "data" type: "Data" top: "data"
        data_param { source: "train_db/features" batch_size: 2 backend: LMDB } }
layer { name: "label" type: "Data" top: "label"
        data_param { source: "train_db/labels" batch_size: 2 backend: LMDB } }
layer { name: "score" type: "Convolution" bottom: "data" top: "score"
        convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""


@pytest.mark.parametrize("bits", [8, 16])
def test_engine_data_layers_read_the_built_records(small_phantom, tmp_path: Path,
                                                   bits: int) -> None:
    from dlp.engine.net import Net
    from dlp.net.prototxt import parse_net_text

    out = tmp_path / "ds"
    build_dataset(SunnybrookSource(small_phantom.images_dir, small_phantom.contours_dir), out,
                  BuildOptions(preprocessing=Preprocessing(size=(32, 32), bits=bits,
                                                           intensity="none" if bits == 16
                                                           else "minmax"),
                               val_percent=25))
    net = Net(parse_net_text(PROBE_NET, "probe"), "TRAIN", root=out, seed=0)
    try:
        first, second = net.forward(), net.forward()
    finally:
        net.close()
    features, labels = DatumDB(out / "train_db/features"), DatumDB(out / "train_db/labels")
    for batch, blobs in enumerate((first, second)):
        for n in range(2):
            key = batch * 2 + n
            np.testing.assert_array_equal(blobs["data"][n].numpy(),
                                          features.get(key).astype(np.float32))
            np.testing.assert_array_equal(blobs["label"][n].numpy(),
                                          labels.get(key).astype(np.float32))
    assert float(first["loss"].detach()) > 0
