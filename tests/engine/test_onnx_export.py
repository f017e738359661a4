"""ONNX export of netlib deploy nets (Crop, Deconvolution, ceil-mode pooling,
concat skips) checked against the engine's own output with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dlp.engine.net import Net
from dlp.engine.onnx_export import export_onnx
from dlp.engine.weights import read_caffemodel, write_caffemodel
from dlp.errors import DLPError
from dlp.net.deploy import derive_deploy_net
from dlp.net.prototxt import read_net
from tests.engine.netlib_support import NETLIB


@pytest.mark.parametrize(("name", "size"), [("sunnybrook-fcn", 48), ("unet2d", 32),
                                            ("lenet", 28)])
def test_onnx_output_matches_the_engine(name, size, tmp_path):
    deploy = derive_deploy_net(read_net(NETLIB / name / "train_val.prototxt"),
                               (1, 1, size, size))
    trained = Net(deploy, "TEST", seed=3)
    weights_path = tmp_path / "w.caffemodel"
    write_caffemodel(trained, weights_path)
    report = export_onnx(deploy, read_caffemodel(weights_path), tmp_path / "model.onnx")
    assert report is not None and not report.missing and not report.mismatched
    x = np.random.default_rng(0).random((2, 1, size, size), dtype=np.float32)  # batch 2
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    (output,) = session.get_outputs()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    batch_one = derive_deploy_net(read_net(NETLIB / name / "train_val.prototxt"),
                                  (2, 1, size, size))
    reference = Net(batch_one, "TEST")
    reference.copy_from(read_caffemodel(weights_path))
    with torch.no_grad():
        expected = reference({reference.input_names[0]: torch.from_numpy(x)})[output.name]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def test_export_refuses_a_train_net(tmp_path):
    with pytest.raises(DLPError, match=r"needs a deploy net with an Input layer"):
        export_onnx(read_net(NETLIB / "lenet" / "train_val.prototxt"), None,
                    tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
