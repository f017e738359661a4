"""``python -m dlp net``: inspect and convert Caffe nets (the code the Net editor uses).

    dlp net info NET.prototxt [--phase TRAIN|TEST] [--input-shape N,C,H,W] [--json]
    dlp net deploy TRAIN_VAL.prototxt -o deploy.prototxt [--input-shape N,C,H,W]
    dlp net upgrade OLD.prototxt -o NEW.prototxt
    dlp net onnx DEPLOY.prototxt --weights W.caffemodel -o model.onnx [--input-shape ...]
    dlp net caffe NET.prototxt -o FOR_CAFFE.prototxt
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type names only; the modules load inside run()
    from dlp.net.shapes import LayerInfo, NetShapes
    from dlp.proto.caffe_pb2 import NetParameter

Shape = tuple[int, ...]

HELP = ("inspect and convert Caffe nets: info (shapes, params, FLOPs), deploy, upgrade, onnx, "
        "caffe")

_SHAPE_HELP = ("input shape N,C,H,W (or BLOB=N,C,H,W to name the input; repeatable). For a "
               "net with Data layers it sets the data shape instead of reading the LMDB")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="net_action", metavar="ACTION")
    actions.required = True

    info = actions.add_parser("info", help="print each layer's output shapes, params and FLOPs")
    info.add_argument("net", help="a net prototxt (V1 nets are upgraded on the fly)")
    info.add_argument("--phase", default="TEST", type=str.upper, choices=("TRAIN", "TEST"),
                      help="the phase whose layers run (default TEST)")
    info.add_argument("--stage", action="append", default=[], metavar="STAGE",
                      help="a net stage to add to the state (repeatable), e.g. deploy")
    info.add_argument("--level", type=int, default=0, help="the net state's level (default 0)")
    info.add_argument("--input-shape", action="append", default=[], metavar="SHAPE",
                      help=_SHAPE_HELP)
    info.add_argument("--json", action="store_true",
                      help='print a JSON list of {"name", "type", "tops", "params", "flops"}')
    info.set_defaults(_net_run=_run_info)

    deploy = actions.add_parser("deploy", help="derive a deploy net from a train/val net")
    deploy.add_argument("net", help="the train/val prototxt")
    deploy.add_argument("-o", "--output", required=True, help="the deploy prototxt to write")
    deploy.add_argument("--input-shape", action="append", default=[], metavar="SHAPE",
                        help="the deploy input shape N,C,H,W (default: one sample of the "
                        "data layer's LMDB, batch 1)")
    deploy.set_defaults(_net_run=_run_deploy)

    upgrade = actions.add_parser("upgrade", help="upgrade an old (V0/V1) prototxt to the "
                                 "current format")
    upgrade.add_argument("net", help="the old prototxt")
    upgrade.add_argument("-o", "--output", required=True, help="the upgraded prototxt to write")
    upgrade.set_defaults(_net_run=_run_upgrade)

    onnx = actions.add_parser("onnx", help="export a deploy net with its weights to ONNX")
    onnx.add_argument("net", help="the deploy prototxt")
    onnx.add_argument("--weights", required=True, help="the .caffemodel with trained weights")
    onnx.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx.add_argument("--input-shape", action="append", default=[], metavar="SHAPE",
                      help="the input shape N,C,H,W (default: the net's Input shape)")
    onnx.set_defaults(_net_run=_run_onnx)

    caffe = actions.add_parser("caffe", help="write a copy that BVLC Caffe runs (without DLP's "
                               "extension fields and Dice metric layers)")
    caffe.add_argument("net", help="the net prototxt")
    caffe.add_argument("-o", "--output", required=True, help="the prototxt to write")
    caffe.set_defaults(_net_run=_run_caffe)


def run(args: argparse.Namespace) -> int:
    return int(args._net_run(args))


# --------------------------------------------------------------------------- helpers

def parse_shape(text: str) -> Shape:
    """``"1,3,224,224"`` (or ``1x3x224x224``) as a tuple; InputError names the option."""
    from dlp.errors import InputError

    parts = text.replace("x", ",").replace("\u00d7", ",").split(",")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"--input-shape {text!r}: expected positive integers separated by "
                         "commas, like 1,3,224,224")
    return shape


def parse_shapes(values: list[str]) -> tuple[Shape | None, dict[str, Shape]]:
    """``--input-shape`` values as (unnamed shape or None, {blob: shape})."""
    from dlp.errors import InputError

    unnamed: Shape | None = None
    named: dict[str, Shape] = {}
    for value in values:
        name, sep, shape_text = value.rpartition("=")
        if sep:
            if not name:
                raise InputError(f"--input-shape {value!r}: the blob name before '=' is empty")
            named[name] = parse_shape(shape_text)
        elif unnamed is not None:
            raise InputError("give one unnamed --input-shape; name the others as BLOB=N,C,H,W")
        else:
            unnamed = parse_shape(shape_text)
    return unnamed, named


def _human(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return str(int(value))


def _shapes_for_info(net: NetParameter, phase: str, stages: list[str], level: int,
                     values: list[str]) -> tuple[dict[str, Shape], Shape | None]:
    """(input_shapes, data_shape): an unnamed --input-shape goes to the first net
    input, or, in a net that reads files, to every Data layer (labels 1-channel)."""
    from dlp.errors import DLPError
    from dlp.net.filter import filter_net
    from dlp.net.shapes import legacy_inputs
    from dlp.net.specs import SampleSourceSpec, get_spec

    unnamed, named = parse_shapes(values)
    input_shapes: dict[str, Shape] = dict(named)
    data_shape: Shape | None = None
    if unnamed is None:
        return input_shapes, data_shape
    inputs = [name for name, _ in legacy_inputs(net)]
    if inputs:
        input_shapes.setdefault(inputs[0], unnamed)
        return input_shapes, data_shape
    for layer in filter_net(net, phase, level, stages).layer:
        try:
            spec = get_spec(layer.type)
        except DLPError:
            continue
        if isinstance(spec, SampleSourceSpec):
            data_shape = unnamed
            break
        if (spec.is_data_source or not layer.bottom) and layer.top:
            input_shapes.setdefault(layer.top[0], unnamed)
            break
    return input_shapes, data_shape


# --------------------------------------------------------------------------- actions

def _run_info(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from dlp.net.prototxt import read_net
    from dlp.net.shapes import infer_shapes
    from dlp.net.specs import format_shape
    from dlp.net.validate import validate_net

    net = read_net(args.net)
    input_shapes, data_shape = _shapes_for_info(net, args.phase, args.stage, args.level,
                                                args.input_shape)
    result = infer_shapes(net, args.phase, input_shapes=input_shapes, data_shape=data_shape,
                          stages=args.stage, level=args.level)
    if args.json:
        rows = []
        for info in result.layers:
            row = {
                "name": info.name, "type": info.type,
                "tops": {top: list(shape) if shape is not None else None
                         for top, shape in info.tops.items()},
                "params": info.params, "flops": info.flops,
            }
            if info.error:
                row["error"] = info.error
            rows.append(row)
        # One layer per line: readable, and still one JSON document.
        print("[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]")
    else:
        _print_table(net.name, args.phase, result, format_shape)
    # Structural problems shape inference does not see (a top written twice, a cycle,
    # ignored parameters), reported once per layer next to the shape errors.
    issues = validate_net(net, args.phase, level=args.level, stages=args.stage)
    failed = {info.name for info in result.errors}
    text = Path(args.net).read_text(encoding="utf-8")
    for info in result.root_errors:
        print(f"error: {_where(args.net, text, info.name)}{info.error}", file=sys.stderr)
    downstream = len(result.errors) - len(result.root_errors)
    if downstream:
        print(f"({downstream} later layer(s) cannot be shaped until these are fixed)",
              file=sys.stderr)
    for issue in issues:
        if issue.severity == "error" and issue.layer in failed:
            continue
        print(f"{issue.severity}: {_where(args.net, text, issue.layer)}{issue.message}",
              file=sys.stderr)
    structural = any(issue.severity == "error" for issue in issues)
    return 1 if result.errors or structural else 0


def _where(path: str, text: str, layer: str | None) -> str:
    """``file:line: `` of the layer's ``name:`` line (``file: `` when not found)."""
    from dlp.net.prototxt import layer_line

    line = layer_line(text, layer)
    return f"{path}:{line}: " if line is not None else f"{path}: "


def _print_table(name: str, phase: str, result: NetShapes, format_shape) -> None:
    rows = [("layer", "type", "top", "shape", "params", "FLOPs", "")]
    for info in result.layers:
        tops = list(info.tops.items()) or [("", None)]
        for index, (top, shape) in enumerate(tops):
            first = index == 0
            rows.append((
                info.name if first else "", info.type if first else "", top,
                format_shape(shape) if top else "",
                f"{info.params:,}" if first and info.params else "",
                _human(info.flops) if first and info.flops else "",
                _note(info) if first else "",
            ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"net {name or '(unnamed)'}, phase {phase}")
    for row in rows:
        cells = [cell.rjust(w) if i in (4, 5) else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip())
    print(f"total: {result.total_params:,} learnable parameters, "
          f"{_human(result.total_flops)} FLOPs per forward pass")


def _note(info: LayerInfo) -> str:
    if not info.error:
        return info.key_params
    return f"(needs {info.caused_by})" if info.caused_by else "ERROR (see below)"


def _run_deploy(args: argparse.Namespace) -> int:
    from dlp.net.deploy import DeployError, derive_deploy_net
    from dlp.net.prototxt import read_net, write_net
    from dlp.net.shapes import infer_shapes
    from dlp.net.specs import format_shape

    net = read_net(args.net)
    unnamed, named = parse_shapes(args.input_shape)
    shape = named or unnamed
    try:
        deploy = derive_deploy_net(net, shape)
    except DeployError as exc:
        raise DeployError(f"{args.net}: {exc}") from None
    write_net(deploy, args.output)
    result = infer_shapes(deploy, "TEST")
    inputs = [f"{layer.top[0]} {format_shape(result.blobs.get(layer.top[0]))}"
              for layer in deploy.layer if layer.type == "Input"]
    consumed = {bottom for layer in deploy.layer for bottom in layer.bottom}
    outputs = [f"{top} {format_shape(result.blobs.get(top))}"
               for layer in deploy.layer for top in layer.top if top not in consumed]
    print(f"wrote {args.output}: {len(deploy.layer)} layers; input {', '.join(inputs)}; "
          f"output {', '.join(outputs)}")
    return 0


def _run_upgrade(args: argparse.Namespace) -> int:
    from dlp.errors import InputError
    from dlp.net.prototxt import parse_net_text, write_net
    from dlp.net.upgrade import is_v0_net, is_v1_net, needs_upgrade, upgrade_net

    try:
        with open(args.net, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"{args.net}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{args.net}: not a text prototxt") from None
    old = parse_net_text(text, args.net, upgrade=False)
    if not needs_upgrade(old):
        what = "already in the current format; written unchanged"
    elif is_v0_net(old):
        what = "upgraded V0 layers to V2"
    elif is_v1_net(old):
        what = f"upgraded {len(old.layers)} V1 layers to V2"
    else:
        what = "upgraded deprecated fields"
    new = upgrade_net(old, source=args.net)
    write_net(new, args.output)
    print(f"wrote {args.output}: {what}")
    return 0


def _run_onnx(args: argparse.Namespace) -> int:
    from dlp.errors import InputError
    from dlp.net.prototxt import read_net
    from dlp.net.shapes import infer_shapes

    net = read_net(args.net)
    unnamed, named = parse_shapes(args.input_shape)
    if named:
        raise InputError("net onnx takes one unnamed --input-shape N,C,H,W")
    input_shape = unnamed
    if input_shape is None:
        inputs = [layer.top[0] for layer in net.layer if layer.type == "Input" and layer.top]
        if not inputs:
            raise InputError(f"{args.net}: no Input layer; is this a deploy net? (derive one "
                             "with 'dlp net deploy') or give --input-shape")
        result = infer_shapes(net, "TEST")
        if inputs[0] not in result.blobs:
            raise InputError(f"{args.net}: the shape of input {inputs[0]!r} is unknown; give "
                             "--input-shape")
        input_shape = result.blobs[inputs[0]]
    # torch loads only now that the inputs are known to be usable
    from dlp.engine.onnx_export import export_onnx
    from dlp.engine.weights import read_caffemodel

    weights = read_caffemodel(args.weights)
    report = export_onnx(net, weights, args.output, tuple(input_shape))
    print(f"wrote {args.output}" + (f": weights {report.summary()}" if report else ""))
    return 0


def _run_caffe(args: argparse.Namespace) -> int:
    from dlp.net.bvlc import for_bvlc_caffe
    from dlp.net.prototxt import read_net, write_net

    export = for_bvlc_caffe(read_net(args.net), args.net)
    write_net(export.net, args.output)
    dropped = (f"; left out DLP's {', '.join(repr(n) for n in export.dropped_layers)}"
               if export.dropped_layers else "")
    print(f"wrote {args.output}: {len(export.net.layer)} layers{dropped}")
    return 0
