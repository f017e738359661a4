"""``python -m dlp`` / ``dlp``: every GUI action is reachable from here, headless.

Each sub-command lives in the package it belongs to, in a module exposing::

    HELP: str                                  # one line for ``dlp --help``
    def configure(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int   # exit code

Command modules import only ``argparse`` at module level so ``dlp --help`` stays
fast; heavy imports (torch, Qt) happen inside ``run``.  A :class:`~dlp.errors.DLPError`
escaping ``run`` is printed as one line on stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import dlp
from dlp.errors import DLPError

#: sub-command name -> module implementing it (see the module docstring).
COMMANDS: dict[str, str] = {
    "gui": "dlp.gui.command",
    "train": "dlp.engine.solver.command_train",
    "test": "dlp.engine.solver.command_test",
    "time": "dlp.engine.solver.command_time",
    "device_query": "dlp.engine.solver.command_device_query",
    "net": "dlp.net.command",
    "dataset": "dlp.data.command_dataset",
    "phantom": "dlp.data.command_phantom",
    "deploy": "dlp.deploy.command",
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlp",
        description="DLP: Caffe networks for medical image segmentation, on a PyTorch engine.",
    )
    parser.add_argument("--version", action="version", version=f"dlp {dlp.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dlp.memory import tune_allocator

    tune_allocator()  # before any thread allocates (see dlp.memory)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except DLPError as exc:
        print(f"dlp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dlp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
