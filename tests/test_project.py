"""The Qt-free project model: persistence, settings, recent projects, autosave, runs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dlp.project import (
    PROJECT_FILE,
    Project,
    ProjectError,
    RecentProjects,
    caffe_tools_problem,
)


def test_create_writes_layout_and_reopens_with_same_settings(project_dir: Path) -> None:
    project = Project.create(project_dir)
    for sub in ("nets", "nets/library", "datasets", "runs", "deploy", "results"):
        assert (project_dir / sub).is_dir(), sub
    project.update_settings(device="cuda:1", python_layers=True)
    project.set_state("Data", {"split": 15})

    reopened = Project.open(project_dir)
    assert reopened.settings.device == "cuda:1"
    assert reopened.settings.python_layers is True
    assert reopened.settings.engine == "builtin"
    assert reopened.state("Data") == {"split": 15}
    assert reopened.net_path == project_dir.resolve() / "nets" / "train_val.prototxt"
    assert json.loads((project_dir / PROJECT_FILE).read_text())["format_version"] == 1


def test_python_layers_are_off_by_default(project_dir: Path) -> None:
    assert Project.create(project_dir).settings.python_layers is False


def test_open_a_folder_that_is_not_a_project_names_it(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not a DLP project"):
        Project.open(tmp_path)
    with pytest.raises(ProjectError, match="no such folder"):
        Project.open(tmp_path / "missing")


def test_create_refuses_an_existing_project(project_dir: Path) -> None:
    Project.create(project_dir)
    with pytest.raises(ProjectError, match="already a DLP project"):
        Project.create(project_dir)
    assert Project.open_or_create(project_dir).root == project_dir.resolve()


def test_broken_project_file_reports_line_and_column(project_dir: Path) -> None:
    (project_dir / PROJECT_FILE).write_text('{\n  "settings": {\n    "device": cpu\n}')
    with pytest.raises(ProjectError, match=rf"{PROJECT_FILE}:3:15: invalid JSON"):
        Project.open(project_dir)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"engine": "tensorflow"}, "field 'engine'"),
        ({"device": "gpu0"}, "field 'device'"),
        ({"python_layers": "yes"}, "field 'python_layers'"),
        ({"colour": "blue"}, "unknown settings field 'colour'"),
    ],
)
def test_invalid_settings_name_the_field(project_dir: Path, settings: dict, message: str) -> None:
    (project_dir / PROJECT_FILE).write_text(json.dumps({"settings": settings}))
    with pytest.raises(ProjectError, match=message):
        Project.open(project_dir)


def test_project_from_a_newer_dlp_is_refused(project_dir: Path) -> None:
    (project_dir / PROJECT_FILE).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ProjectError, match="newer DLP"):
        Project.open(project_dir)


def test_caffe_tools_folder_is_checked_with_a_reason(tmp_path: Path) -> None:
    assert "does not exist" in caffe_tools_problem(tmp_path / "nope")
    assert "contains no 'caffe'" in caffe_tools_problem(tmp_path)
    binary = tmp_path / "caffe"
    binary.write_text("#!/bin/sh\n")
    assert "not executable" in caffe_tools_problem(tmp_path)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    assert caffe_tools_problem(tmp_path) is None


def test_choosing_an_invalid_caffe_is_refused_but_a_vanished_one_still_opens(
    project_dir: Path, tmp_path: Path
) -> None:
    project = Project.create(project_dir)
    with pytest.raises(ProjectError, match="caffe_tools"):
        project.update_settings(engine="caffe", caffe_tools=str(tmp_path / "nope"))
    assert project.settings.engine == "builtin"

    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "caffe").write_text("#!/bin/sh\n")
    (tools / "caffe").chmod(0o755)
    project.update_settings(engine="caffe", caffe_tools=str(tools))
    (tools / "caffe").unlink()
    assert Project.open(project_dir).settings.engine == "caffe"


def test_events_reach_observers_and_can_be_blocked(project_dir: Path) -> None:
    project = Project.create(project_dir)
    seen = []
    project.events.connect(lambda event: seen.append((event.kind, event.data)))
    project.update_settings(device="cuda:0")
    project.request_deploy("deploy.prototxt", "w.caffemodel")
    with project.events.blocker():
        project.notify_net_changed()
    assert seen[0][0] == "settings_changed"
    assert seen[1] == ("deploy_requested",
                       {"deploy_net": "deploy.prototxt", "weights": "w.caffemodel"})
    assert len(seen) == 2


def test_new_run_dirs_are_unique_and_listed(project_dir: Path) -> None:
    project = Project.create(project_dir)
    first = project.new_run_dir()
    second = project.new_run_dir()
    assert first != second and first.is_dir() and second.is_dir()
    (first / "run.json").write_text(json.dumps({"max_iter": 10}))
    runs = project.runs()
    assert [r.name for r in runs] == sorted([first.name, second.name])
    assert next(r for r in runs if r.name == first.name).info == {"max_iter": 10}
    with pytest.raises(ProjectError, match="run name prefix"):
        project.new_run_dir("../escape")


def test_recent_projects_are_newest_first_deduplicated_and_existing(tmp_path: Path) -> None:
    recent = RecentProjects(tmp_path / "config" / "recent.json", limit=3)
    roots = [Project.create(tmp_path / f"p{i}").root for i in range(4)]
    for root in roots:
        recent.add(root)
    recent.add(roots[1])
    assert recent.list() == [roots[1], roots[3], roots[2]]
    (roots[3] / PROJECT_FILE).unlink()
    assert recent.list() == [roots[1], roots[2]]
    assert recent.last() == roots[1]
    # A fresh RecentProjects (next start of DLP) reads the same file.
    assert RecentProjects(recent.path).last() == roots[1]


def test_recent_projects_default_location_honours_config_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLP_CONFIG_DIR", str(tmp_path / "cfg"))
    assert RecentProjects().path == tmp_path / "cfg" / "recent-projects.json"


def test_autosave_survives_a_crash_and_recovers_into_the_project(project_dir: Path) -> None:
    project = Project.create(project_dir)
    project.begin_session()
    project.write_autosave("Net", {"nets/train_val.prototxt": 'name: "unsaved"\n'})
    assert not project.net_path.exists()
    # The process "crashed": a new session in a new process sees the content.
    reopened = Project.open(project_dir)
    reopened_session_pid = json.loads((project_dir / ".autosave" / "session.json").read_text())
    assert reopened_session_pid["pid"] == os.getpid()  # our own mark is not "another session"
    assert reopened.needs_recovery()
    assert reopened.autosaved() == {"Net": {"nets/train_val.prototxt": 'name: "unsaved"\n'}}
    events = []
    reopened.events.connect(lambda e: events.append(e.kind))
    written = reopened.recover_autosave()
    assert written == [reopened.net_path]
    assert reopened.net_path.read_text() == 'name: "unsaved"\n'
    assert "net_changed" in events
    assert not reopened.needs_recovery()


def test_clean_close_leaves_nothing_to_recover(project_dir: Path) -> None:
    project = Project.create(project_dir)
    project.begin_session()
    project.write_autosave("Net", {"nets/train_val.prototxt": "x"})
    project.end_session()
    assert not Project.open(project_dir).needs_recovery()


def test_autosave_paths_must_stay_inside_the_project(project_dir: Path) -> None:
    project = Project.create(project_dir)
    with pytest.raises(ProjectError, match="inside the project"):
        project.write_autosave("Net", {"../outside.txt": "x"})
    with pytest.raises(ProjectError, match="module name"):
        project.write_autosave("../Net", {"a.txt": "x"})


def test_autosave_of_a_live_other_session_is_not_offered(project_dir: Path) -> None:
    project = Project.create(project_dir)
    project.write_autosave("Net", {"nets/train_val.prototxt": "x"})
    # pid 1 (init) is always alive: another DLP owns this project right now.
    (project_dir / ".autosave" / "session.json").write_text(json.dumps({"pid": 1}))
    assert not project.needs_recovery()


def test_datasets_lists_broken_ones_with_the_reason(project_dir: Path) -> None:
    project = Project.create(project_dir)
    (project.datasets_dir / "empty").mkdir()
    (project.datasets_dir / ".half-built.partial").mkdir()
    entries = project.datasets()
    assert [(e.name, e.manifest, e.error) for e in entries] == [
        ("empty", None, "no manifest.json")
    ]


def test_project_and_demo_never_load_torch_or_qt(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dlp.project import Project\n"
        "import dlp.demo\n"
        f"p = Project.create({str(tmp_path / 'p')!r})\n"
        "(p.datasets_dir / 'd').mkdir()\n"
        "(p.datasets_dir / 'd' / 'manifest.json').write_text('{}')\n"
        "assert p.datasets()[0].error\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PyQt5', 'pyqtgraph')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
