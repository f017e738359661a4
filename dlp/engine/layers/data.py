"""Source layers: Input (blobs fed by the caller), DummyData (fillers) and Data
(LMDB of Datums through :mod:`dlp.engine.data_feed`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from dlp.data.lmdb_io import DatumDB, read_mean_binaryproto
from dlp.engine.augment import CaffeTransform
from dlp.engine.data_feed import DataFeed, FeedMember
from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape
from dlp.engine.registry import register_layer
from dlp.errors import DLPError


def _blob_shape(shape_proto: Any) -> Shape:
    return tuple(int(d) for d in shape_proto.dim)


@register_layer("Input")
class Input(Layer):
    """Declares the shapes of blobs the caller passes to ``Net.forward(inputs)``."""

    is_input: ClassVar[bool] = True

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        shapes = [_blob_shape(s) for s in param.input_param.shape]
        tops = len(param.top)
        if len(shapes) not in (1, tops):
            raise self.error(f"input_param has {len(shapes)} shapes for {tops} tops; expected "
                             f"1 or {tops}")
        self.shapes = shapes * tops if len(shapes) == 1 else shapes

    def top_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        return list(self.shapes)

    def forward(self) -> tuple[torch.Tensor, ...]:
        raise self.error("Input blobs are fed by the caller (Net.forward(inputs))")


@register_layer("DummyData")
class DummyData(Layer):
    """Blobs filled by ``data_filler`` (constant fillers once, others every forward)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.dummy_data_param
        tops = len(param.top)
        if len(p.shape):
            shapes = [_blob_shape(s) for s in p.shape]
        else:
            legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
            n = max(len(v) for v in legacy)
            if n == 0 or any(len(v) not in (1, n) for v in legacy):
                raise self.error("dummy_data_param needs shape, or num/channels/height/width "
                                 "(one value each, or one per top)")
            shapes = [tuple(v[i if len(v) > 1 else 0] for v in legacy) for i in range(n)]
        if len(shapes) not in (1, tops):
            raise self.error(f"{len(shapes)} shapes for {tops} tops; expected 1 or {tops}")
        self.shapes = shapes * tops if len(shapes) == 1 else shapes
        fillers = list(p.data_filler)
        if len(fillers) not in (0, 1, tops):
            raise self.error(f"{len(fillers)} data_filler entries for {tops} tops; expected "
                             f"0, 1 or {tops}")
        self.fillers = fillers * tops if len(fillers) == 1 else fillers or [None] * tops
        self.device = ctx.device
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(ctx.seed if ctx.seed is not None else torch.initial_seed())
        self._constant: dict[int, torch.Tensor] = {}

    def top_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        return list(self.shapes)

    def forward(self) -> tuple[torch.Tensor, ...]:
        tops = []
        for i, (shape, filler) in enumerate(zip(self.shapes, self.fillers, strict=False)):
            constant = filler is None or filler.type == "constant"
            if constant and i in self._constant:
                tops.append(self._constant[i])
                continue
            blob = torch.empty(shape)
            fill(blob, filler, self.generator)
            blob = blob.to(self.device)
            if constant:
                self._constant[i] = blob
            tops.append(blob)
        return tuple(tops)


def _resolve(path: str, ctx: BuildContext) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and not candidate.exists() and ctx.root is not None:
        rooted = ctx.root / candidate
        if rooted.exists():
            return rooted
    return candidate


@register_layer("Data")
class Data(Layer):
    """A batch ``(N, C, H, W)`` (and labels ``(N,)`` with a second top) from an LMDB.

    All Data layers of a net read the same keys in lock-step (features + labels
    databases, DIGITS layout), share their random transform per sample (paired
    augmentation) and are fed by one prefetch thread.
    """

    is_data_source: ClassVar[bool] = True

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.data_param
        if not p.source:
            raise self.error("data_param.source (the LMDB folder) is required")
        if p.HasField("backend") and p.backend == 0:
            raise self.error("backend LEVELDB is not supported; convert the database to LMDB")
        if not p.batch_size:
            raise self.error("data_param.batch_size must be set (>= 1)")
        source = _resolve(p.source, ctx)
        try:
            db = DatumDB(source)
            first = db.first()[1]
        except DLPError as exc:
            raise self.error(f"data_param.source: {exc}") from None
        tp = param.transform_param
        mean_image = None
        if tp.mean_file:
            try:
                mean_image = read_mean_binaryproto(_resolve(tp.mean_file, ctx))
            except DLPError as exc:
                raise self.error(f"transform_param.mean_file: {exc}") from None
        try:
            transform = CaffeTransform(tp, tuple(first.shape), ctx.is_train, mean_image,
                                       self.layer_name)
        except ValueError as exc:
            raise self.error(f"transform_param: {exc}") from None
        augmentation = tp.augmentation if tp.HasField("augmentation") else None
        feed = ctx.shared.get("data_feed")
        if feed is None:
            feed = DataFeed(p.batch_size, ctx.seed, p.shuffle, p.prefetch, p.rand_skip)
            ctx.shared["data_feed"] = feed
        elif p.shuffle != feed.shuffle:
            raise self.error("all Data layers of a net must agree on data_param.shuffle")
        self.feed = feed
        self.with_label = len(param.top) > 1
        self.member = FeedMember(self.layer_name, db, transform, augmentation, self.with_label,
                                 ctx.device)
        self.index = feed.add(self.member, p.batch_size)
        self.shapes: list[Shape] = [(p.batch_size, *transform.out_shape)]
        if self.with_label:
            self.shapes.append((p.batch_size,))

    def top_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        return list(self.shapes)

    def use_channels_last(self) -> None:
        self.member.channels_last = True

    def forward(self) -> tuple[torch.Tensor, ...]:
        return self.feed.fetch(self.index)

    def close(self) -> None:
        self.feed.close()
