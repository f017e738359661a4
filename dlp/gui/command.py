"""``python -m dlp gui [PROJECT_DIR]``: start the desktop application."""

from __future__ import annotations

import argparse

HELP = "start the desktop application (Data, Net, Train, Deploy)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project_dir", nargs="?", default=None,
                        help="working directory to open (made a project if it is not one); "
                             "default: the last project, or the demo project on first start")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo project (~/DLP-demo, or $DLP_DEMO_DIR), "
                             "building it on first use")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="render the window to PNG once it is shown, then quit "
                             "(a smoke check that needs no display)")


def run(args: argparse.Namespace) -> int:
    from dlp.gui.app import run_app

    return run_app(args.project_dir, demo=args.demo, screenshot=args.screenshot)
