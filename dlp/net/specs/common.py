"""Common layers: InnerProduct (fully connected) and Embed."""

from __future__ import annotations

from typing import Any

from dlp.net.specs.base import LayerSpec, Shape, count, register_spec


@register_spec
class InnerProductSpec(LayerSpec):
    """Caffe's InnerProduct: flattens from ``axis`` on; weight ``(N, K)``, or ``(K, N)``
    with ``transpose: true``; bias ``(N,)``."""

    type = "InnerProduct"
    category = "Common"
    summary = "Fully connected layer: every output is a weighted sum of all inputs."
    param_field = "inner_product_param"

    def _dims(self, layer: Any, shape: Shape) -> tuple[int, int, int]:
        p = layer.inner_product_param
        if not p.HasField("num_output") or p.num_output <= 0:
            raise self.error(layer, "inner_product_param.num_output must be set to a positive "
                             "number")
        axis = self.canonical_axis(layer, p.axis, len(shape), "inner_product_param.axis")
        return axis, count(shape, axis), p.num_output

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = tuple(bottom_shapes[0])
        axis, _, outputs = self._dims(layer, shape)
        return [(*shape[:axis], outputs)]

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        _, inputs, outputs = self._dims(layer, tuple(bottom_shapes[0]))
        p = layer.inner_product_param
        shapes: list[Shape] = [(inputs, outputs) if p.transpose else (outputs, inputs)]
        if p.bias_term:
            shapes.append((outputs,))
        return shapes

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        _, inputs, _ = self._dims(layer, tuple(bottom_shapes[0]))
        return 2 * inputs * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.inner_product_param
        return f"→ {p.num_output}" + (" ᵀ" if p.transpose else "")


@register_spec
class EmbedSpec(LayerSpec):
    """Caffe's Embed: integer indices → rows of a ``(input_dim, num_output)`` table."""

    type = "Embed"
    category = "Common"
    summary = "Looks up a learned vector for each integer index (one-hot inner product)."
    param_field = "embed_param"
    engine_supported = False  # no engine layer yet: the editor knows it for import/export

    def _check(self, layer: Any) -> None:
        p = layer.embed_param
        if p.num_output <= 0 or p.input_dim <= 0:
            raise self.error(layer, "embed_param needs positive num_output and input_dim")

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        self._check(layer)
        return [(*bottom_shapes[0], layer.embed_param.num_output)]

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        self._check(layer)
        p = layer.embed_param
        shapes: list[Shape] = [(p.input_dim, p.num_output)]
        if p.bias_term:
            shapes.append((p.num_output,))
        return shapes

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.embed_param
        return f"{p.input_dim} → {p.num_output}"
