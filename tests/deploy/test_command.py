"""``python -m dlp deploy`` in a subprocess produces what the library produces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from dlp.deploy.batch import run_batch
from dlp.deploy.inputs import collect_inputs

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dlp", "deploy", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_matches_the_library_and_reports_bad_files(session, trained_model, tmp_path):
    inputs = tmp_path / "in" / trained_model.val_case_dir.name  # the case names its contours
    inputs.mkdir(parents=True)
    for path in trained_model.val_images[:2]:
        (inputs / path.name).write_bytes(path.read_bytes())
    (inputs / "corrupt.dcm").write_bytes(b"not dicom at all")
    result = _cli("--model", str(trained_model.deploy_net), "--weights",
                  str(trained_model.weights), "--labels", str(trained_model.labels),
                  "--manifest", str(trained_model.manifest), str(inputs), "--out",
                  str(tmp_path / "cli"), "--evaluate", str(trained_model.contours_dir),
                  "--per-file")
    assert result.returncode == 2, result.stderr  # 2: some inputs failed
    assert "FAILED  corrupt: " in result.stdout and "corrupt.dcm" in result.stdout
    assert "2 of 3 inputs segmented" in result.stdout
    assert "dice left ventricle:" in result.stdout

    library = tmp_path / "lib"
    run_batch(session, collect_inputs([inputs], group_series=False), library,
              ground_truth=trained_model.contours_dir)
    for path in trained_model.val_images[:2]:
        cli_mask = np.asarray(Image.open(tmp_path / "cli" / path.stem / "mask.png"))
        lib_mask = np.asarray(Image.open(library / path.stem / "mask.png"))
        assert (cli_mask != lib_mask).mean() < 0.001
    assert (tmp_path / "cli" / "measurements.csv").read_text().splitlines()[0] == \
        (library / "measurements.csv").read_text().splitlines()[0]
    assert (tmp_path / "cli" / "evaluation.csv").is_file()


def test_cli_bad_model_is_one_line(trained_model, tmp_path, capsys) -> None:
    from dlp.cli import main

    bad = tmp_path / "deploy.prototxt"
    bad.write_text('layer { name: "x" type: "Input" top: "data" input_param { shape { dim: 1 '
                   "dim: 1 dim: 8 } }\n")
    code = main(["deploy", "--model", str(bad), "--weights", str(trained_model.weights),
                 str(trained_model.val_images[0]), "--out", str(tmp_path / "o")])
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlp deploy: error: ")
    assert "deploy.prototxt" in lines[0]


def test_cli_missing_input_is_named(trained_model, tmp_path, capsys) -> None:
    from dlp.cli import main

    code = main(["deploy", "--model", str(trained_model.deploy_net), "--weights",
                 str(trained_model.weights), str(tmp_path / "nope.dcm"), "--out",
                 str(tmp_path / "o")])
    assert code == 1
    assert "nope.dcm: no such file or folder" in capsys.readouterr().err
