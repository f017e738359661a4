"""Data layers: where a net's blobs come from (Input, DummyData, LMDB Data, ...).

The shapes of ``Input`` and ``DummyData`` are in the prototxt.  Layers that read
samples (``Data``, ``ImageData``, ``HDF5Data``) need one sample's shape ``(C, H, W)``:
the caller may give it (``infer_shapes(data_shape=...)``, e.g. from a dataset
manifest), otherwise ``Data`` reads the first Datum of its LMDB.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlp.errors import DLPError
from dlp.net.specs.base import TIMES, LayerSpec, Shape, format_shape, register_spec


def _blob_shape(shape_message: Any) -> Shape:
    return tuple(int(d) for d in shape_message.dim)


class _SourceSpec(LayerSpec):
    """A layer with no bottoms whose tops come from outside the net."""

    category = "Data"
    bottoms = (0, 0)
    tops = (1, None)
    is_data_source = True

    def _check_dims(self, layer: Any, shapes: list[Shape]) -> list[Shape]:
        for index, shape in enumerate(shapes):
            if any(d <= 0 for d in shape):
                raise self.error(layer, f"shape {index} {format_shape(shape)} has a dimension "
                                 "that is not positive")
        return shapes


@register_spec
class InputSpec(_SourceSpec):
    type = "Input"
    summary = "Declares the net's input blobs and their shapes (deploy nets)."
    param_field = "input_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shapes = [_blob_shape(s) for s in layer.input_param.shape]
        tops = max(1, len(layer.top))
        if len(shapes) == 1:
            shapes = shapes * tops
        elif len(shapes) != tops:
            raise self.error(layer, f"give input_param.shape once or once per top ({tops}); "
                             f"got {len(shapes)}")
        return self._check_dims(layer, shapes)

    def key_params(self, layer: Any) -> str:
        return ", ".join(format_shape(_blob_shape(s)) for s in layer.input_param.shape)


@register_spec
class DummyDataSpec(_SourceSpec):
    type = "DummyData"
    summary = "Blobs of a given shape filled by a filler (constant, gaussian, ...)."
    param_field = "dummy_data_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.dummy_data_param
        tops = max(1, len(layer.top))
        if len(p.data_filler) not in (0, 1, tops):
            raise self.error(layer, f"give data_filler 0 times, once or once per top ({tops}); "
                             f"got {len(p.data_filler)}")
        legacy = {name: list(getattr(p, name)) for name in ("num", "channels", "height", "width")}
        if any(legacy.values()):
            if p.shape:
                raise self.error(layer, "give either shape or num/channels/height/width, "
                                 "not both")
            for name, values in legacy.items():
                if len(values) not in (1, tops):
                    raise self.error(layer, f"give {name} once or once per top ({tops}); got "
                                     f"{len(values)}")
            shapes = [tuple(legacy[name][0 if len(legacy[name]) == 1 else i]
                            for name in ("num", "channels", "height", "width"))
                      for i in range(tops)]
        else:
            if len(p.shape) not in (1, tops):
                raise self.error(layer, f"give dummy_data_param.shape once or once per top "
                                 f"({tops}); got {len(p.shape)}")
            shapes = [_blob_shape(p.shape[0 if len(p.shape) == 1 else i]) for i in range(tops)]
        return self._check_dims(layer, shapes)

    def key_params(self, layer: Any) -> str:
        p = layer.dummy_data_param
        return ", ".join(format_shape(_blob_shape(s)) for s in p.shape)


@register_spec
class MemoryDataSpec(_SourceSpec):
    """Caffe's MemoryData (arrays handed over by C++/Python code); editor only."""

    type = "MemoryData"
    summary = "Batches handed over by the program that runs the net; not run by DLP's engine."
    param_field = "memory_data_param"
    extra_param_fields = ("transform_param",)
    tops = (2, 2)
    engine_supported = False

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.memory_data_param
        batch = p.batch_size
        return self._check_dims(layer, [(batch, p.channels, p.height, p.width), (batch,)])

    def key_params(self, layer: Any) -> str:
        p = layer.memory_data_param
        return format_shape((p.batch_size, p.channels, p.height, p.width))


class SampleSourceSpec(_SourceSpec):
    """A data layer whose tops are batches of samples read from files.

    :meth:`source_shapes` turns per-top sample shapes into top shapes; a sample
    shape of 4 values ``(N, C, H, W)`` also overrides the batch size.
    :meth:`read_samples` finds the sample shapes from the layer's own source.
    """

    extra_param_fields = ("transform_param",)

    def batch_size(self, layer: Any) -> int:
        raise NotImplementedError

    def read_samples(self, layer: Any, base_dir: str | os.PathLike[str] | None = None
                     ) -> dict[str, Shape]:
        """Sample shapes by top name, read from the layer's source files."""
        raise self.error(layer, "cannot read its source to find the data shape; give the "
                         "data shape (--input-shape)")

    def source_shapes(self, layer: Any, samples: Mapping[str, Shape]) -> list[Shape]:
        raise NotImplementedError

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return self.source_shapes(layer, self.read_samples(layer))

    def _batch_and_sample(self, layer: Any, sample: Shape) -> tuple[int, Shape]:
        if len(sample) == 4:
            return sample[0], tuple(sample[1:])
        if len(sample) != 3:
            raise self.error(layer, f"a sample shape is (C, H, W) or (N, C, H, W); got "
                             f"{format_shape(sample)}")
        batch = self.batch_size(layer)
        if batch <= 0:
            raise self.error(layer, "the batch size must be positive")
        return batch, tuple(sample)

    def _cropped(self, layer: Any, sample: Shape, crop: int) -> Shape:
        channels, height, width = sample
        if crop:
            if crop > height or crop > width:
                raise self.error(layer, f"crop_size {crop} is larger than the "
                                 f"{height}{TIMES}{width} samples")
            return (channels, crop, crop)
        return sample

    def _image_tops(self, layer: Any, samples: Mapping[str, Shape], crop: int) -> list[Shape]:
        top0 = layer.top[0] if layer.top else ""
        if top0 not in samples:
            raise self.error(layer, f"no sample shape for top {top0!r}")
        batch, sample = self._batch_and_sample(layer, tuple(samples[top0]))
        shapes: list[Shape] = [(batch, *self._cropped(layer, sample, crop))]
        if len(layer.top) > 1:
            shapes.append((batch,))  # Caffe's label blob: one integer per sample
        return self._check_dims(layer, shapes)


def resolve_source(source: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """A data source path as Caffe opens it: relative to ``base_dir`` (else the cwd)."""
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


@register_spec
class DataSpec(SampleSourceSpec):
    """Caffe's Data layer over an LMDB of Datums: ``(batch, C, H, W)`` and ``(batch,)`` labels."""

    type = "Data"
    summary = "Reads batches of images (and labels) from an LMDB database of Datums."
    param_field = "data_param"
    tops = (1, 2)

    def batch_size(self, layer: Any) -> int:
        return layer.data_param.batch_size

    def crop_size(self, layer: Any) -> int:
        return layer.transform_param.crop_size or layer.data_param.crop_size

    def read_samples(self, layer: Any, base_dir: str | os.PathLike[str] | None = None
                     ) -> dict[str, Shape]:
        from dlp.data.lmdb_io import DatumDB

        source = layer.data_param.source
        if not source:
            raise self.error(layer, "data_param.source is empty; give the LMDB folder")
        path = resolve_source(source, base_dir)
        if not path.exists():
            raise self.error(layer, f"data_param.source {str(path)!r} does not exist; build the "
                             "dataset or give the data shape (--input-shape)")
        try:
            with DatumDB(path) as db:
                _, array, _ = db.first()
        except DLPError as exc:
            raise self.error(layer, f"cannot read the first record: {exc}") from exc
        return {layer.top[0] if layer.top else "": tuple(int(d) for d in array.shape)}

    def source_shapes(self, layer: Any, samples: Mapping[str, Shape]) -> list[Shape]:
        return self._image_tops(layer, samples, self.crop_size(layer))

    def key_params(self, layer: Any) -> str:
        p = layer.data_param
        name = Path(p.source).name if p.source else "?"
        parent = Path(p.source).parent.name if p.source else ""
        where = f"{parent}/{name}" if parent else name
        return f"batch {p.batch_size} · {where}"


@register_spec
class ImageDataSpec(SampleSourceSpec):
    """Caffe's ImageData (a text list of image files); known to the editor, not the engine."""

    type = "ImageData"
    summary = "Reads images listed in a text file (path label per line); not run by DLP's engine."
    param_field = "image_data_param"
    tops = (2, 2)
    engine_supported = False

    def batch_size(self, layer: Any) -> int:
        return layer.image_data_param.batch_size

    def read_samples(self, layer: Any, base_dir: str | os.PathLike[str] | None = None
                     ) -> dict[str, Shape]:
        """The first listed image's size, read as Caffe does (``root_folder + name``)."""
        from PIL import Image, UnidentifiedImageError

        p = layer.image_data_param
        if not p.source:
            raise self.error(layer, "image_data_param.source is empty; give the list file")
        listing = resolve_source(p.source, base_dir)
        try:
            lines = listing.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(layer, f"cannot read the image list {str(listing)!r} ({exc}); "
                             "give the data shape (--input-shape)") from None
        first = next((line.strip() for line in lines if line.strip()), None)
        if first is None:
            raise self.error(layer, f"the image list {str(listing)!r} is empty")
        # Caffe splits each line at its last space: "<file name> <label>"
        name = first.rsplit(" ", 1)[0] if " " in first else first
        image_path = resolve_source(p.root_folder + name, base_dir)
        try:
            with Image.open(image_path) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError) as exc:
            raise self.error(layer, f"cannot read the first image {str(image_path)!r} "
                             f"({exc})") from None
        return {layer.top[0] if layer.top else "": (3 if p.is_color else 1, height, width)}

    def source_shapes(self, layer: Any, samples: Mapping[str, Shape]) -> list[Shape]:
        p = layer.image_data_param
        if bool(p.new_height) != bool(p.new_width):
            raise self.error(layer, "give new_height and new_width together")
        top0 = layer.top[0] if layer.top else ""
        if top0 in samples and p.new_height and p.new_width:
            batch, sample = self._batch_and_sample(layer, tuple(samples[top0]))
            samples = {top0: (batch, sample[0], p.new_height, p.new_width)}
        crop = layer.transform_param.crop_size or p.crop_size
        return self._image_tops(layer, samples, crop)

    def key_params(self, layer: Any) -> str:
        return f"batch {layer.image_data_param.batch_size}"


@register_spec
class HDF5DataSpec(SampleSourceSpec):
    """Caffe's HDF5Data: one top per dataset; every sample shape must be given."""

    type = "HDF5Data"
    summary = "Reads datasets named like its tops from HDF5 files; not run by DLP's engine."
    param_field = "hdf5_data_param"
    engine_supported = False

    def batch_size(self, layer: Any) -> int:
        return layer.hdf5_data_param.batch_size

    def source_shapes(self, layer: Any, samples: Mapping[str, Shape]) -> list[Shape]:
        batch = self.batch_size(layer)
        shapes = []
        for top in layer.top:
            if top not in samples:
                raise self.error(layer, f"no sample shape for dataset {top!r}; give it as "
                                 f"{top}=N,C,H,W")
            shapes.append((batch, *samples[top]))
        return self._check_dims(layer, shapes)

    def key_params(self, layer: Any) -> str:
        return f"batch {layer.hdf5_data_param.batch_size}"

