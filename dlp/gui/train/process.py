"""The training process seen from the GUI: start it detached, follow its log, stop it.

Training runs as a *detached* child (``QProcess.startDetached`` with stdout/stderr
redirected into the run folder) rather than a child the GUI owns: quitting DLP can
then leave a run going, and the next session re-attaches to it by pid and log —
the same code path as a run started in this session.  :class:`RunMonitor` polls
the log a few times a second; reading a few dozen lines per tick keeps the event
loop free even when the solver logs every iteration.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from PyQt5.QtCore import QIODevice, QObject, QProcess, QProcessEnvironment, QTimer, pyqtSignal

from dlp.errors import DLPError
from dlp.train.curves import LiveCurves
from dlp.train.log import Done, Failure, LogParser, Snapshot
from dlp.train.runs import LogFollower, Run, process_start_time

POLL_MS = 200
POLL_BYTES = 256 * 1024


class TrainProcessError(DLPError):
    """The training program could not be started."""


def start_detached(program: str, arguments: list[str], cwd: Path, *, stdout: Path,
                   stderr: Path, env: dict[str, str] | None = None) -> int:
    """Start ``program`` in ``cwd`` outliving this process; returns its pid.

    Output is appended to the ``stdout``/``stderr`` files.
    """
    process = QProcess()
    process.setProgram(program)
    process.setArguments(arguments)
    process.setWorkingDirectory(str(cwd))
    process.setStandardOutputFile(str(stdout), QIODevice.Append)
    process.setStandardErrorFile(str(stderr), QIODevice.Append)
    environment = QProcessEnvironment.systemEnvironment()
    environment.insert("PYTHONUNBUFFERED", "1")
    for key, value in (env or {}).items():
        environment.insert(key, value)
    process.setProcessEnvironment(environment)
    ok, pid = process.startDetached()
    if not ok or pid <= 0:
        raise TrainProcessError(f"cannot start {program}: {process.errorString()}")
    return int(pid)


class RunMonitor(QObject):
    """Follows one run: its log (parsed into curves) and whether its process lives.

    Signals: ``lines(list)`` raw log lines, ``records(list)`` parsed records,
    ``curves_changed(set)`` names of curves that grew, ``finished(str)`` the final
    status (``done``, ``stopped``, ``failed``, ``interrupted``) once the process is gone.
    """

    lines = pyqtSignal(list)
    records = pyqtSignal(list)
    curves_changed = pyqtSignal(set)
    finished = pyqtSignal(str)

    def __init__(self, run: Run, parent: QObject | None = None, *,
                 poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.run = run
        self.curves = LiveCurves()
        self.parser = LogParser()
        self.follower = LogFollower(run.log_path)
        self.failures: list[str] = []
        self.done: Done | None = None
        self.snapshots: list[Snapshot] = []
        self.stop_requested = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._watching = False

    # ---- the log

    def read_existing(self) -> None:
        """Parse what the log already holds (re-attach, or showing a finished run)."""
        while True:
            lines = self.follower.read_lines()
            if not lines:
                break
            self._consume(lines)
        self.curves.flush()
        self._emit_curves()

    def _consume(self, lines: list[str]) -> None:
        if not lines:
            return
        records = []
        for line in lines:
            records.extend(self.parser.feed(line))
        self.curves.feed(records)
        for record in records:
            if isinstance(record, Failure):
                self.failures.append(record.message)
            elif isinstance(record, Done):
                self.done = record
            elif isinstance(record, Snapshot):
                self.snapshots.append(record)
                self.curves.last_iteration = max(self.curves.last_iteration, record.iteration)
        self.lines.emit(lines)
        if records:
            self.records.emit(records)

    def _emit_curves(self) -> None:
        changed = self.curves.take_changed()
        if changed:
            self.curves_changed.emit(changed)

    # ---- the process

    @property
    def watching(self) -> bool:
        return self._watching

    def watch(self) -> None:
        """Poll until the run's process exits, then emit ``finished``."""
        self._watching = True
        self._timer.start()

    def poll(self) -> None:
        # A bounded read per tick: catching up with a long log never freezes the GUI.
        lines = self.follower.read_lines(max_bytes=POLL_BYTES)
        self._consume(lines)
        if not lines:
            self.curves.flush()  # the burst is over: a test block is complete
        self._emit_curves()
        if self._watching and not self.run.process_alive():
            self._timer.stop()
            self._watching = False
            self._consume(self.follower.read_rest())
            self.curves.flush()
            self._emit_curves()
            self.finished.emit(self.final_status())

    def final_status(self) -> str:
        if self.failures:
            return "failed"
        if self.done is not None:
            return "stopped" if self.stop_requested and self.done.stopped_early else "done"
        # Gone without "Optimization Done": stopped by the user, or it crashed.
        return "stopped" if self.stop_requested else "failed"

    def interrupt(self) -> bool:
        """Ask the solver to snapshot and stop (SIGINT, as Ctrl+C on ``caffe train``)."""
        pid = self.run.info.get("pid")
        if not self.run.process_alive():
            return False
        self.stop_requested = True
        try:
            os.kill(int(pid), signal.SIGINT)
        except OSError:
            return False
        return True

    def kill(self) -> None:
        pid = self.run.info.get("pid")
        if self.run.process_alive():
            sigkill = getattr(signal, "SIGKILL", signal.SIGTERM)
            with contextlib.suppress(OSError):
                os.kill(int(pid), sigkill)

    def stop_polling(self) -> None:
        self._timer.stop()
        self._watching = False


#: how much lower than the GUI the training process runs (POSIX niceness): on a busy
#: machine the desktop stays responsive; on an idle one training still gets every core.
TRAINING_NICENESS = 5


def lower_priority(pid: int, niceness: int = TRAINING_NICENESS) -> bool:
    """Renice the training process (best effort; False where not possible)."""
    import psutil

    if not hasattr(os, "nice"):
        return False  # Windows: priority classes, not worth a dialog
    try:
        process = psutil.Process(pid)
        process.nice(min(19, os.nice(0) + niceness))
        return True
    except (psutil.Error, OSError):
        return False


def launch(run: Run, program: str, arguments: list[str], *, log_to_stderr: bool = False,
           resumed_from: str | None = None) -> int:
    """Start training ``run`` and record the process in ``run.json``; returns the pid.

    ``log_to_stderr``: the program logs to stderr only (external ``caffe``), so its
    stderr *is* the log file.
    """
    stderr = run.log_path if log_to_stderr else run.stderr_path
    pid = start_detached(program, arguments, run.path, stdout=run.stdout_path, stderr=stderr)
    lower_priority(pid)
    starts = list(run.info.get("starts", []))
    starts.append({"time": time.time(), "pid": pid, "resume_from": resumed_from,
                   "command": [program, *arguments]})
    run.update(status="running", pid=pid, pid_started=process_start_time(pid),
               starts=starts, stderr_file=str(stderr.name))
    return pid
