"""Denormal floats are flushed in the training loop, and only there."""

from __future__ import annotations

import pytest
import torch

from dlp.engine.runtime import denormals_flushed

DENORMAL = 1e-40  # below float32's smallest normal number (1.2e-38)

def _survives(value: float) -> bool:
    return bool(torch.tensor([value], dtype=torch.float32)[0] * 1.0 != 0)


def test_denormals_are_flushed_only_inside_the_block() -> None:
    assert _survives(DENORMAL)
    with denormals_flushed():
        assert not _survives(DENORMAL)
    assert _survives(DENORMAL)


def test_a_failing_block_still_restores_denormals() -> None:
    with pytest.raises(RuntimeError), denormals_flushed():
        raise RuntimeError("boom")
    assert _survives(DENORMAL)


def test_solver_steps_leave_the_process_with_denormals(tmp_path) -> None:
    """Flushing process-wide sent SciPy's cKDTree (Hausdorff) into endless recursion."""
    from dlp.engine.solver.solver import Solver
    from dlp.net.prototxt import parse_solver_text

    net = """
    layer { name: "x" type: "DummyData" top: "x" top: "t" dummy_data_param {
      shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 } data_filler { type: "gaussian" } } }
    layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y"
      inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
    """
    text = f'net_param {{ {net} }} base_lr: 0.1 lr_policy: "fixed" max_iter: 3 ' \
           f'snapshot_prefix: "{tmp_path}/s" random_seed: 1'
    solver = Solver(parse_solver_text(text, "solver.prototxt"), solver_dir=tmp_path)
    solver.step(3)
    assert solver.iter == 3
    assert _survives(DENORMAL)
