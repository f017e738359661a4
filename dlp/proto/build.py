"""Regenerate ``caffe_pb2.py`` (and its type stub) from ``caffe.proto``.

Run ``python -m dlp.proto.build`` after editing ``caffe.proto``; the generated files
are committed so that DLP runs without a protobuf compiler.  The compiler comes from
``grpcio-tools`` (dev/test extra), which bundles ``protoc`` as a Python module, so the
output is reproducible from the pinned version alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from dlp.errors import DLPError
from dlp.fsutil import atomic_write_bytes

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "caffe.proto"
GENERATED = ("caffe_pb2.py", "caffe_pb2.pyi")


class ProtocError(DLPError):
    """protoc rejected caffe.proto or is not installed."""


def _run_protoc(arguments: list[str]) -> None:
    try:
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ProtocError(
            "grpcio-tools is not installed; install the dev extra: pip install -e '.[dev]'"
        ) from exc
    include = Path(protoc.__file__).resolve().parent / "_proto"
    # protoc reports errors on stderr itself; the exit code says whether it worked.
    status = protoc.main(["protoc", f"--proto_path={PROTO_DIR}", f"--proto_path={include}",
                          *arguments, PROTO_FILE.name])
    if status != 0:
        raise ProtocError(f"{PROTO_FILE}: protoc failed with exit code {status} (see above)")


def compile_descriptor_set() -> bytes:
    """Compile caffe.proto now and return its serialized ``FileDescriptorSet``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "caffe.desc"
        _run_protoc([f"--descriptor_set_out={out}"])
        return out.read_bytes()


def generate(out_dir: Path = PROTO_DIR) -> list[Path]:
    """Compile caffe.proto into ``out_dir`` and return the files written (atomically)."""
    with tempfile.TemporaryDirectory() as tmp:
        _run_protoc([f"--python_out={tmp}", f"--pyi_out={tmp}"])
        written = []
        for name in GENERATED:
            target = Path(out_dir) / name
            atomic_write_bytes(target, (Path(tmp) / name).read_bytes())
            written.append(target)
    return written


def stale_files(committed_dir: Path = PROTO_DIR) -> list[str]:
    """Generated files in ``committed_dir`` that differ from what caffe.proto gives now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        return [path.name for path in fresh
                if not (committed_dir / path.name).is_file()
                or (committed_dir / path.name).read_bytes() != path.read_bytes()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlp.proto.build", description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=PROTO_DIR,
                        help="where to write caffe_pb2.py (default: beside caffe.proto)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed files are stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(args.out_dir)
            for name in stale:
                print(f"stale: {args.out_dir / name} (run python -m dlp.proto.build)",
                      file=sys.stderr)
            return 1 if stale else 0
        for path in generate(args.out_dir):
            print(f"wrote {path}")
    except DLPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
