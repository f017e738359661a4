"""The Net Library as the editor uses it: built-in and user entries, their nets with
stored layouts, and "save to my library" (``meta.json`` read off the net itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlp.errors import DLPError, InputError
from dlp.fsutil import atomic_write_text
from dlp.gui.net.analysis import NetAnalysis
from dlp.gui.net.placement import layout_path_for, read_layout
from dlp.net.document import NetDocument, Position
from dlp.proto import caffe_pb2


def library_paths(user_dir: Path | None) -> list[Path]:
    """Where Net Library entries are looked up: the built-in netlib, then the user's."""
    from dlp.net.library import builtin_netlib_dir

    return [builtin_netlib_dir()] + ([Path(user_dir)] if user_dir else [])


def load_library_net(name: str, paths: list[Path] | None = None
                     ) -> tuple[Any, dict[str, Position], tuple[int, int, int]]:
    """A Net Library entry's net, its stored layout (if any) and its input (C, H, W)."""
    from dlp.net.library import find_entry

    entry = find_entry(name, paths)
    net, _solver = entry.load()
    return net, read_layout(layout_path_for(entry.net_path)), entry.input_shape


def library_meta(doc: NetDocument, analysis: NetAnalysis | None, name: str,
                 description: str) -> dict[str, Any]:
    """``meta.json`` for "save to my library", read off the net and its analysis."""
    from dlp.net.specs import get_spec

    layers = [doc.layer_view(i) for i in doc.node_ids()]
    sources: dict[str, str] = {}
    input_shape, classes, segmentation = None, 1, False
    for node_id, layer in zip(doc.node_ids(), layers, strict=True):
        try:
            spec = get_spec(layer.type)
        except DLPError:
            continue
        report = analysis.nodes.get(node_id) if analysis else None
        if spec.category == "Data" and layer.top:
            if layer.HasField("data_param") and layer.data_param.source:
                sources.setdefault(layer.top[0], Path(layer.data_param.source).name)
            shape = report.tops.get(layer.top[0]) if report else None
            if input_shape is None and shape is not None and len(shape) == 4:
                input_shape = [int(d) for d in shape[1:]]
        if spec.is_loss and layer.bottom and analysis is not None:
            source_shape = next((analysis.blob_shape(link.source, link.blob)
                                 for link in doc.links()
                                 if link.sink == node_id and link.bottom_index == 0), None)
            if source_shape is not None and len(source_shape) >= 2:
                classes = max(classes, int(source_shape[1]))
                segmentation = segmentation or (len(source_shape) >= 4 and
                                                any(d > 1 for d in source_shape[2:]))
    meta: dict[str, Any] = {
        "name": name, "title": name, "description": description.strip() or name,
        "task": "segmentation" if segmentation else "classification",
        "input": input_shape or [1, 256, 256], "classes": classes,
        "source": "saved from the DLP net editor",
    }
    if segmentation:
        meta["dataset_sources"] = sources or {"data": "features", "label": "labels"}
    elif sources:
        meta["dataset_sources"] = sources
    return meta


def save_user_library_entry(library_dir: Path, name: str, description: str, doc: NetDocument,
                            analysis: NetAnalysis | None, solver: Any = None) -> Path:
    """Store the net (with its layout) in the user's library; returns the entry folder."""
    from dlp.net.library import save_entry

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip())
    if not safe or safe.startswith("."):
        raise InputError(f"library entry name {name!r}: use letters, digits, - and _")
    if solver is None:
        solver = caffe_pb2.SolverParameter(net="train_val.prototxt")
    entry = save_entry(library_dir, doc.to_net(), solver,
                       library_meta(doc, analysis, safe, description))
    atomic_write_text(layout_path_for(entry.net_path), doc.layout_json())
    return entry.path
