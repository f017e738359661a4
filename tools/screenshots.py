"""Render the main window with each tab in front to docs/screenshots/<tab>.png.

    python tools/screenshots.py [--out docs/screenshots] [--project DIR] [--size 1280x820]
                                [--train-iterations 300]

Without ``--project`` it builds the demo project (phantom dataset, Sunnybrook FCN) in
a temporary folder first and trains it briefly with ``python -m dlp train`` (as the
Train tab would), so the pictures show real content: curves on the Train tab, the best
snapshot segmenting a phantom series on the Deploy tab.  Runs offscreen; needs no
display.  The user's recent-projects list is not touched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_demo(project_dir: Path, iterations: int) -> None:
    """A short run of the project's net and solver, made and started as the Train tab does."""
    from dlp.net.prototxt import read_net, read_solver
    from dlp.project import Project
    from dlp.train.runs import create_run, train_arguments

    project = Project.open(project_dir)
    solver = read_solver(project.solver_path)
    solver.max_iter = iterations
    solver.snapshot = iterations
    solver.test_interval = max(iterations // 6, 1)
    run = create_run(project.new_run_dir("run"), read_net(project.net_path), solver)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "dlp", *train_arguments(run)], cwd=run.path,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run.update(status="done")
    print(f"trained {iterations} iterations in {time.monotonic() - started:.0f} s")


def _wait(condition, timeout: float = 120.0) -> None:
    from PyQt5.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QCoreApplication.processEvents()
        time.sleep(0.02)


def _segment(window, path: Path) -> None:
    """Send the best snapshot of the shown run to Deploy and segment ``path`` there."""
    train, deploy = window.modules["Train"], window.modules["Deploy"]
    if not train.deploy_best():
        raise RuntimeError("the Train tab has no snapshot to send to Deploy")
    _wait(lambda: deploy.session is not None or "load" not in deploy._workers)
    deploy.segment_paths([str(path)])
    _wait(lambda: deploy.current is not None and "drop" not in deploy._workers)
    slider = deploy.viewer.slice_slider
    slider.setValue(slider.maximum() // 2)


def render_tabs(project_dir: Path, out_dir: Path, size: tuple[int, int],
                deploy_input: Path | None = None) -> list[Path]:
    """Open ``project_dir`` in a MainWindow and grab it once per tab; the PNGs written.

    With ``deploy_input``, the Deploy tab shows that image segmented by the best
    snapshot of the latest run.
    """
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
    if deploy_input is not None:
        _segment(window, deploy_input)
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
    parser.add_argument("--train-iterations", type=int, default=300,
                        help="train the demo this long first (0: no run, no deploy result)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    project_dir, deploy_input = args.project, None
    if project_dir is None:
        from dlp.demo import PHANTOM_FOLDER, build_demo_content, ensure_demo_project

        project_dir = Path(tempfile.mkdtemp(prefix="dlp-shots-")) / "DLP-demo"
        build_demo_content(ensure_demo_project(project_dir))
        if args.train_iterations > 0:
            train_demo(project_dir, args.train_iterations)
            cases = sorted(p for p in (project_dir / PHANTOM_FOLDER / "images").rglob("*")
                           if p.is_dir() and any(p.glob("*.dcm")))
            deploy_input = cases[-1]
    for path in render_tabs(project_dir, args.out, (width, height), deploy_input):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
