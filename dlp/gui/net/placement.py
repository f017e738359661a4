"""Where nodes go: the layout file beside a net, and positions for layers that have none.

A net file ``train_val.prototxt`` keeps its node positions in ``train_val.layout.json``;
layers missing there are laid out automatically (all of them when most are missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlp.gui.net import style
from dlp.gui.net.items import node_size
from dlp.gui.net.scene import base_look, layout_positions
from dlp.net.document import NetDocument, Position


def layout_path_for(net_path: Path) -> Path:
    """``nets/train_val.prototxt`` → ``nets/train_val.layout.json``."""
    return net_path.with_name(f"{net_path.stem}.layout.json")


def read_layout(path: Path) -> dict[str, Position]:
    if not path.is_file():
        return {}
    return NetDocument.parse_layout_json(path.read_text(encoding="utf-8"), str(path))


def complete_positions(net: Any, positions: dict[str, Position]) -> dict[str, Position]:
    """Positions for every layer: all laid out when most are missing, else each missing
    one placed under the layer that feeds it."""
    doc = NetDocument(net)
    names = [doc.layer_view(i).name for i in doc.node_ids()]
    missing = [n for n in names if n not in positions]
    if not missing:
        return dict(positions)
    if len(missing) * 2 > len(names):
        laid = layout_positions(doc)
        return {doc.layer_view(i).name: laid[i] for i in doc.node_ids()}
    result = dict(positions)
    bottom_edge = max((y for _, y in positions.values()), default=0.0) + 160
    sources = {link.sink: link.source for link in doc.links()}
    for node_id in doc.node_ids():
        name = doc.layer_view(node_id).name
        if name in result:
            continue
        source = sources.get(node_id)
        if source is not None and doc.layer_view(source).name in result:
            sx, sy = result[doc.layer_view(source).name]
            height = node_size(base_look(doc.layer_view(source)))[1]
            result[name] = (sx + 30, sy + height + style.ROW_SPACING)
        else:
            result[name] = (0.0, bottom_edge)
            bottom_edge += 160
    return result
