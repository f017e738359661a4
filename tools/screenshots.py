"""Render the main window with each tab in front to docs/screenshots/<tab>.png.

    python tools/screenshots.py [--out docs/screenshots] [--project DIR] [--size 1280x820]

Without ``--project`` it builds the demo project (phantom dataset, Sunnybrook FCN) in
a temporary folder first, so the pictures show real content.  Runs offscreen; needs
no display.  The user's recent-projects list is not touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render_tabs(project_dir: Path, out_dir: Path, size: tuple[int, int]) -> list[Path]:
    """Open ``project_dir`` in a MainWindow and grab it once per tab; the PNGs written."""
    from PyQt5.QtCore import QCoreApplication

    from dlp.gui.app import make_application
    from dlp.gui.main_window import MainWindow
    from dlp.project import Project, RecentProjects

    app = make_application()
    config = Path(tempfile.mkdtemp(prefix="dlp-shots-config-"))
    window = MainWindow(Project.open(project_dir),
                        recent=RecentProjects(config / "recent-projects.json"))
    window.resize(*size)
    window.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(window.tabs.count()):
        title = window.tabs.tabText(index)
        window.tabs.setCurrentIndex(index)
        for _ in range(5):  # let layouts, lazy loads and repaints settle
            QCoreApplication.processEvents()
        path = out_dir / f"{title.lower()}.png"
        if not window.grab().save(str(path)):
            raise OSError(f"{path}: could not write the screenshot")
        written.append(path)
    window.close_discarding_changes()
    app.processEvents()
    return written


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--project", type=Path, default=None,
                        help="project to show (default: a freshly built demo project)")
    parser.add_argument("--size", default="1280x820", help="window size WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    project_dir = args.project
    if project_dir is None:
        from dlp.demo import build_demo_content, ensure_demo_project

        project_dir = Path(tempfile.mkdtemp(prefix="dlp-shots-")) / "DLP-demo"
        build_demo_content(ensure_demo_project(project_dir))
    for path in render_tabs(project_dir, args.out, (width, height)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
