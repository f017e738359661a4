"""A tiny trainable project for the Train tab tests: a 32x32 phantom dataset and a small FCN."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.project import Project

DATASET = "phantom"

# Sources are relative, as in a Net Library entry: the Train form points them at the
# project's dataset.  The TRAIN and TEST data layers share names, as in Caffe's examples.
TINY_NET = """
name: "tinyfcn"
layer { name: "data" type: "Data" top: "data" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param { source: "train_db/features" batch_size: 2 backend: LMDB } }
layer { name: "label" type: "Data" top: "label" include { phase: TRAIN }
  data_param { source: "train_db/labels" batch_size: 2 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" include { phase: TEST }
  transform_param { scale: 0.00390625 }
  data_param { source: "val_db/features" batch_size: 2 backend: LMDB } }
layer { name: "label" type: "Data" top: "label" include { phase: TEST }
  data_param { source: "val_db/labels" batch_size: 2 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "score" type: "Convolution" bottom: "conv1" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "dice" type: "Dice" bottom: "score" bottom: "label" top: "dice"
  top: "dice_per_class" include { phase: TEST } }
layer { name: "accuracy" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""

SOLVER = """
net: "train_val.prototxt"
test_iter: 2
test_interval: {test_interval}
base_lr: 0.05
momentum: 0.9
weight_decay: 0.0005
lr_policy: "step"
gamma: 0.5
stepsize: 200
display: {display}
max_iter: {max_iter}
snapshot: {snapshot}
random_seed: 7
"""


def make_dataset(project: Project, name: str = DATASET) -> Path:
    """A 32x32 phantom (2 cases, 2 slices) built into ``datasets/<name>``."""
    from dlp.data.builder import BuildOptions, build_dataset
    from dlp.data.phantom import generate_phantom
    from dlp.data.preprocess import Preprocessing
    from dlp.data.sources import SunnybrookSource

    phantom = generate_phantom(project.root / "sources" / name, cases=2, slices=2, size=32,
                               seed=0)
    options = BuildOptions(preprocessing=Preprocessing(size=(32, 32), intensity="minmax"),
                           val_percent=50, seed=0)
    build_dataset(SunnybrookSource(phantom.images_dir, phantom.contours_dir),
                  project.dataset_path(name), options)
    return project.dataset_path(name)


def make_train_project(root: Path, *, max_iter: int = 3000, display: int = 5,
                       test_interval: int = 20, snapshot: int = 1000) -> Project:
    """A project with the phantom dataset, the tiny net and its solver."""
    project = Project.open_or_create(root)
    make_dataset(project)
    project.net_path.write_text(TINY_NET, encoding="utf-8")
    project.solver_path.write_text(SOLVER.format(max_iter=max_iter, display=display,
                                                 test_interval=test_interval,
                                                 snapshot=snapshot), encoding="utf-8")
    return project


# A stand-in for a training process (no torch): writes Caffe log lines to train.log at a
# steady pace; on SIGINT it "snapshots" and stops, as the solver does.
FAKE_TRAINER = r"""
import signal, sys, time
log, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stop = []
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
def line(handle, message):
    handle.write(time.strftime("I%m%d %H:%M:%S.000000 ") + "  42 solver.cpp:243] " + message + "\n")
    handle.flush()
with open(log, "a") as handle:
    line(handle, "Solving fake")
    for it in range(count):
        if stop:
            name = f"snapshots/snapshot_iter_{it}.caffemodel"
            line(handle, "Snapshotting to binary proto file " + name)
            line(handle, "Optimization stopped early (stopped).")
            sys.exit(0)
        loss = f"{1.0 / (it + 1):.6g}"
        line(handle, f"Iteration {it}, loss = {loss}")
        line(handle, f"    Train net output #0: loss = {loss} (* 1 = {loss} loss)")
        if it % 10 == 0:
            line(handle, f"Iteration {it}, Testing net (#0)")
            line(handle, f"    Test net output #0: dice = {it / count:.6g}")
        time.sleep(pause)
    line(handle, "Optimization Done.")
"""


def start_fake_trainer(run_dir: Path, iterations: int, pause: float = 0.02):
    """Start the fake trainer appending to ``run_dir/train.log``; returns the Popen."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", FAKE_TRAINER, str(run_dir / "train.log"),
                             str(iterations), str(pause)])


# A stand-in for BVLC `caffe` (no Caffe here): glog lines on stderr only, as Caffe
# prints them, snapshots in the solver's snapshot_prefix, and it refuses DLP's
# extension fields as a real Caffe's protobuf parser would.
FAKE_CAFFE = r"""
import re, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--") and "=" in a)
if sys.argv[1] != "train":
    sys.exit(2)
solver = open(args["solver"]).read()
if "best_metric" in solver:
    print("F1123 00:00:00.000000  9 upgrade_proto.cpp:1118] Check failed: "
          "ReadProtoFromTextFile: unknown field best_metric", file=sys.stderr)
    sys.exit(1)
prefix = re.search(r'snapshot_prefix: "([^"]+)"', solver).group(1)
max_iter = int(re.search(r"max_iter: (\d+)", solver).group(1))
def log(message):
    print(time.strftime("I%m%d %H:%M:%S.000000") + "  9 solver.cpp:243] " + message,
          file=sys.stderr, flush=True)
log("Solving fake")
for it in range(0, max_iter + 1, 10):
    log(f"Iteration {it}, Testing net (#0)")
    log(f"    Test net output #0: dice = {0.9 - abs(it - 20) / 100:.6g}")
    log(f"Iteration {it}, loss = {1.0 / (it + 1):.6g}")
    if it and it % 20 == 0:
        for ext in ("caffemodel", "solverstate"):
            path = f"{prefix}_iter_{it}.{ext}"
            open(path, "wb").close()
            kind = "solver state " if ext == "solverstate" else ""
            log(f"Snapshotting {kind}to binary proto file {path}")
    time.sleep(0.01)
log("Optimization Done.")
"""


def make_fake_caffe_tools(folder: Path) -> Path:
    """A Caffe ``tools`` folder whose ``caffe`` is :data:`FAKE_CAFFE`."""
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "caffe"
    script.write_text(f"#!{sys.executable}\n{FAKE_CAFFE}", encoding="utf-8")
    script.chmod(0o755)
    return folder


def kill_run_processes(project_root: Path) -> list[int]:
    """Kill training processes a failed test left running in the project's runs."""
    import os
    import signal

    from dlp.train.runs import list_runs

    killed = []
    for run in list_runs(project_root / "runs"):
        if run.process_alive():
            os.kill(int(run.info["pid"]), getattr(signal, "SIGKILL", signal.SIGTERM))
            killed.append(int(run.info["pid"]))
    return killed


# -- fixtures the Train tab's test modules share (import them there)

@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training children use one OpenMP thread: on this shared 2-core machine two
    threads per process made the tiny net ~40x slower."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def no_training_left_behind(make_main_window, project_dir: Path,
                            monkeypatch: pytest.MonkeyPatch):
    """Training runs detached from the GUI: a failing test must not leave one going,
    nor block the window's teardown on the "training is running" question."""
    from dlp.gui.train import QtTrainModule

    monkeypatch.setattr(QtTrainModule, "ask_running_choice", lambda self, names: "leave")
    yield
    kill_run_processes(project_dir)


def train_module(make_main_window, project: Project, modules: tuple[str, ...] = ("Train",)):
    window = make_main_window(project, modules=modules)
    return window, window.modules["Train"]
