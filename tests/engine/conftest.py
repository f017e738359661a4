"""Helpers for the engine tests: build one layer (or a tiny net) from prototxt text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

from dlp.engine.layers.base import BuildContext, Layer
from dlp.engine.net import Net
from dlp.engine.registry import get_layer_class
from dlp.net.prototxt import parse_net_text, parse_text
from dlp.proto import caffe_pb2


def layer_param(text: str) -> caffe_pb2.LayerParameter:
    return parse_text(text, caffe_pb2.LayerParameter, source="<test layer>")


def build_layer(text: str, bottom_shapes: Sequence[tuple[int, ...]], phase: str = "TRAIN",
                seed: int = 0, double: bool = True) -> Layer:
    """One engine layer with its fillers run (float64 for gradient checks)."""
    param = layer_param(text)
    layer = get_layer_class(param.type)(param, [tuple(s) for s in bottom_shapes],
                                        BuildContext(phase=phase, seed=seed))
    generator = torch.Generator()
    generator.manual_seed(seed)
    layer.reset_parameters(generator)
    return layer.double() if double else layer


def net_with_inputs(layers_text: str, inputs: dict[str, tuple[int, ...]],
                    phase: str = "TRAIN", **kwargs) -> Net:
    """A Net whose Input layer declares ``inputs`` followed by ``layers_text``."""
    shapes = "".join(
        "shape { " + " ".join(f"dim: {d}" for d in shape) + " } " for shape in inputs.values()
    )
    tops = " ".join(f'top: "{name}"' for name in inputs)
    text = (f'name: "test" layer {{ name: "input" type: "Input" {tops} '
            f"input_param {{ {shapes} }} }}\n{layers_text}")
    return Net(parse_net_text(text, "<test net>"), phase, **kwargs)


def check_gradients(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor,
                    atol: float = 1e-5) -> None:
    """Autograd's gradient of ``fn`` against central finite differences (float64)."""
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=atol, rtol=1e-4, fast_mode=True)


def check_all_gradients(layer: Layer, *bottoms: torch.Tensor, top: int = 0,
                        differentiable: Sequence[int] | None = None,
                        atol: float = 1e-5) -> None:
    """Finite differences against autograd for ``layer``'s top ``top`` with respect to
    its bottoms (those listed in ``differentiable``; default all) AND every learnable
    parameter blob.  The top is weighted by fixed random values so no gradient hides
    behind a plain sum."""
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    chosen = range(len(bottoms)) if differentiable is None else differentiable
    inputs = [b.detach().clone().requires_grad_(i in chosen) for i, b in enumerate(bottoms)]
    generator = torch.Generator().manual_seed(7)
    probe = layer(*[b.detach() for b in bottoms])[top]
    weights = torch.rand(probe.shape, generator=generator, dtype=probe.dtype) + 0.5

    def weighted(*args: torch.Tensor) -> torch.Tensor:
        values = dict(zip(names, args[:len(names)], strict=True))
        out = torch.func.functional_call(layer, values, tuple(args[len(names):]))
        return (out[top] * weights).sum()

    assert torch.autograd.gradcheck(weighted, (*params, *inputs), eps=1e-6, atol=atol,
                                    rtol=1e-4, fast_mode=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
