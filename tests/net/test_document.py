"""NetDocument: the editor's Qt-free model of the net being edited."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.document import DocumentError, Link, NetDocument, layer_phases, unique_name
from dlp.proto import caffe_pb2

NET_TEXT = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" }
"""


def parse(text: str) -> caffe_pb2.NetParameter:
    return text_format.Parse(text, caffe_pb2.NetParameter())


class Recorder:
    def __init__(self, doc: NetDocument) -> None:
        self.events: list[tuple] = []
        for name in ("layer_added", "layer_removed", "layer_changed", "link_added",
                     "link_removed", "node_moved", "net_reset"):
            getattr(doc, name).connect(lambda *args, name=name: self.events.append((name, *args)))


def test_links_follow_caffe_wiring_through_in_place_layers() -> None:
    doc = NetDocument(parse(NET_TEXT))
    ids = {doc.layer_view(i).name: i for i in doc.node_ids()}
    assert set(doc.links()) == {
        Link(ids["data"], 0, ids["conv1"], 0, "data"),
        Link(ids["conv1"], 0, ids["relu1"], 0, "conv1"),
        # pool1 reads conv1 after relu1 overwrote it in place
        Link(ids["relu1"], 0, ids["pool1"], 0, "conv1"),
    }
    assert doc.to_net() == parse(NET_TEXT)


def test_phase_specific_producers_both_feed_a_shared_consumer() -> None:
    doc = NetDocument(parse("""
        layer { name: "train_data" type: "Data" top: "data" include { phase: TRAIN } }
        layer { name: "val_data" type: "Data" top: "data" include { phase: TEST } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" }
    """))
    sources = {doc.layer_view(link.source).name for link in doc.links()}
    assert sources == {"train_data", "val_data"}
    assert layer_phases(doc.layer_view(doc.find("train_data"))) == {0}


def test_add_connect_remove_emit_signals_and_restore() -> None:
    doc = NetDocument(parse(NET_TEXT))
    rec = Recorder(doc)
    layer = caffe_pb2.LayerParameter(name="conv2", type="Convolution", top=["conv2"])
    new_id = doc.add_layer(layer, (10, 20))
    assert rec.events == [("layer_added", new_id)]
    pool = doc.find("pool1")
    doc.set_layer(new_id, doc.connected_layer(pool, 0, new_id, 0))
    assert doc.layer_view(new_id).bottom == ["pool1"]
    assert rec.events[-2:] == [("layer_changed", new_id),
                               ("link_added", Link(pool, 0, new_id, 0, "pool1"))]
    before = doc.to_net()
    index, removed, position = doc.remove_layer(pool)
    assert ("link_removed", Link(pool, 0, new_id, 0, "pool1")) in rec.events
    assert rec.events[-1] == ("layer_removed", pool)
    doc.add_layer(removed, position, index=index, node_id=pool)
    assert doc.to_net() == before


def test_positions_round_trip_through_layout_json() -> None:
    doc = NetDocument(parse(NET_TEXT))
    doc.set_positions({doc.find("conv1"): (12.5, 40.0)})
    positions = NetDocument.parse_layout_json(doc.layout_json())
    again = NetDocument(parse(NET_TEXT), positions)
    assert again.position(again.find("conv1")) == (12.5, 40.0)


def test_bad_input_gets_one_clear_error() -> None:
    doc = NetDocument(parse(NET_TEXT))
    with pytest.raises(DocumentError, match="no node 999"):
        doc.layer(999)
    with pytest.raises(DocumentError, match=r"bad.json: not a DLP layout file"):
        NetDocument.parse_layout_json("[1, 2]", "bad.json")
    v1 = caffe_pb2.NetParameter()
    v1.layers.add(name="old")
    with pytest.raises(DocumentError, match="V1"):
        NetDocument(v1)


def test_unique_names() -> None:
    assert unique_name("conv", ["data"]) == "conv"
    assert unique_name("conv", ["conv"]) == "conv2"
    assert unique_name("conv1", ["conv1", "conv2"]) == "conv3"
