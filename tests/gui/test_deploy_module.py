"""The Deploy tab driven as a user would: configure, switch on, drop, read, evaluate, batch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PyQt5.QtWidgets import QApplication

from dlp.deploy.config import DeployConfig
from dlp.deploy.overlay import apply_window, overlay_image
from tests.deploy.model_support import TrainedModel, get_trained_model

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> TrainedModel:
    return get_trained_model(tmp_path_factory)


@pytest.fixture
def deploy_module(qtbot, project_dir, trained_model, tmp_path):
    from dlp.gui.deploy import QtDeployModule
    from dlp.gui.qt_project import QtProject
    from dlp.project import Project

    qt_project = QtProject(Project.create(project_dir))
    module = QtDeployModule(qt_project)
    qtbot.addWidget(module)
    module.resize(1300, 850)
    module.show()
    qtbot.waitExposed(module)
    yield module
    module.shutdown()


def model_config(model: TrainedModel, out: Path, **changes) -> DeployConfig:
    config = DeployConfig(deploy_net=str(model.deploy_net), weights=str(model.weights),
                          labels=str(model.labels), manifest=str(model.manifest),
                          out_dir=str(out))
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def switch_on(qtbot, module) -> None:
    with qtbot.waitSignal(module.session_changed, timeout=60000,
                          check_params_cb=lambda *a: module.session is not None):
        qtbot.mouseClick(module.config_form.engine_button, Qt.LeftButton)
    assert module.config_form.status_state == "on"


def drop(widget, paths: list[Path]) -> None:
    """A real drag-and-drop: enter then drop events carrying file URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(widget.width() // 2, widget.height() // 2)
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, event)
    assert event.isAccepted()


def drop_target(module, widget) -> object:
    """Where Qt delivers a drop over ``widget``: it or its nearest ancestor accepting drops."""
    while widget is not None and not widget.acceptDrops():
        widget = widget.parentWidget()
    assert widget is not None, "nothing under the cursor accepts drops"
    return widget


def truth_of(model: TrainedModel, image: Path) -> np.ndarray:
    from dlp.deploy.inputs import InputItem
    from dlp.deploy.truth import GroundTruthIndex, load_ground_truth

    index = GroundTruthIndex.scan(model.contours_dir)
    return load_ground_truth(index.find(InputItem(image, image.stem)), (1, 64, 64), 2)[0]


def test_readiness_names_what_is_missing_then_turns_green(qtbot, deploy_module, trained_model,
                                                          tmp_path) -> None:
    form = deploy_module.config_form
    deploy_module.set_config(DeployConfig(out_dir=str(tmp_path)))
    assert form.status_state == "off"
    assert "choose the deploy net" in form.status_text.text()
    deploy_module.set_config(model_config(trained_model, tmp_path, labels=str(tmp_path / "x")))
    assert form.status_state == "off"
    assert "label file not found" in form.status_text.text()
    assert form.labels.edit.toolTip()  # the bad field itself says why
    deploy_module.set_config(model_config(trained_model, tmp_path))
    assert form.status_state == "ready"
    switch_on(qtbot, deploy_module)
    assert "2 classes (background, left ventricle)" in form.status_text.text()
    assert "resized to 64x64" in form.policy_label.text()
    # the configuration is kept in the project
    saved = DeployConfig.load(deploy_module.config_path)
    assert saved.weights == str(trained_model.weights)
    # changing the model switches the engine off until it is switched on again
    deploy_module.set_config(model_config(trained_model, tmp_path, labels=""))
    assert deploy_module.session is None and form.status_state == "ready"


def test_drop_a_phantom_dicom_shows_its_segmentation(qtbot, deploy_module, trained_model,
                                                     tmp_path) -> None:
    from dlp.deploy.measure import dice_per_class

    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    image = trained_model.val_images[0]  # end-diastole of the held-out case
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        drop(deploy_module.drop_zone, [image])
    viewer = deploy_module.viewer
    shown = viewer.overlay_rgba()[..., 3] > 0
    dice = dice_per_class(shown.astype(np.uint8), truth_of(trained_model, image), 2)[1]
    assert dice > trained_model.val_dice - 0.1
    # what is drawn is the image under that mask, blended as the exported overlay is
    prediction = deploy_module.current.prediction
    opacity = viewer.opacity_slider.value() / 100.0

    def blended(**options) -> np.ndarray:
        return overlay_image(prediction.volume.array[0], prediction.labels[0],
                             viewer.label_map.colors, viewer.window, opacity, **options)

    np.testing.assert_array_equal(viewer.shown_picture(), blended())
    viewer.legend._boxes[0].setChecked(False)  # the LV hidden: the image alone
    np.testing.assert_array_equal(viewer.shown_picture(), blended(visible=[True, False]))
    assert (viewer.shown_picture()[shown] != blended()[shown]).any()
    viewer.legend._boxes[0].setChecked(True)
    # the measurements table follows the overlay with the LV's area in mm²
    qtbot.waitUntil(lambda: bool(deploy_module.measurements.rows()), timeout=10000)
    rows = deploy_module.measurements.rows()
    assert rows[0]["class"] == "left ventricle" and rows[0]["pixels"] == int(shown.sum())
    assert deploy_module.measurements.item(0, 4).text() != ""
    # outline-only draws a ring around the same region
    viewer.outline_box.setChecked(True)
    ring = viewer.overlay_rgba()[..., 3] > 0
    assert 0 < ring.sum() < shown.sum() and not (ring & ~shown).any()
    np.testing.assert_array_equal(viewer.shown_picture(), blended(outline_only=True))
    viewer.outline_box.setChecked(False)
    # the probability map of the LV is brightest inside the mask
    viewer.display_box.setCurrentIndex(1)
    alpha = viewer.overlay_rgba()[..., 3].astype(float)
    assert alpha[shown].mean() > 3 * alpha[~shown].mean()
    # the pixel readout names value, class and probability
    r, c = np.argwhere(shown)[len(np.argwhere(shown)) // 2]
    text = viewer.describe_pixel(int(r), int(c))
    assert "class left ventricle (p = " in text and "value" in text
    # window/level: the file's window first, presets and a right-drag change it
    assert viewer.window_box.currentText() == "File default"
    before = viewer.window
    viewer._on_window_drag(20.0, -10.0)
    assert viewer.window[1] > before[1] and viewer.window[0] > before[0]
    # side by side: both views visible, zoom/pan linked
    viewer.layout_box.setCurrentText("Side by side")
    QApplication.processEvents()  # the layout gives the left view its size
    assert viewer.image_view.isVisible()
    viewer.image_view.setRange(xRange=(10, 30), yRange=(10, 30), padding=0)
    QApplication.processEvents()
    left, right = viewer.image_view.viewRange(), viewer.result_view.viewRange()
    np.testing.assert_allclose(left[0], right[0], atol=1e-6)
    # results are written for the dropped file after the overlay is shown
    qtbot.waitUntil(lambda: deploy_module.last_drop_report is not None, timeout=60000)
    assert (tmp_path / "out" / image.stem / "mask.png").is_file()
    assert (tmp_path / "out" / image.stem / "segmentation.dcm").is_file()


def test_drop_a_folder_with_a_corrupt_file(qtbot, deploy_module, trained_model,
                                           tmp_path) -> None:
    # one image from each phantom case: three files of three series, one result each
    folder = tmp_path / "studies"
    folder.mkdir()
    images = [sorted(case.glob("*.dcm"))[0] for case in
              sorted((trained_model.phantom / "images" / "challenge_training").iterdir())]
    for path in images:
        shutil.copy(path, folder / path.name)
    (folder / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 20)
    out = tmp_path / "out"
    deploy_module.set_config(model_config(trained_model, out))
    switch_on(qtbot, deploy_module)
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=120000) as blocker:
        drop(deploy_module.drop_zone, [folder])
    report = blocker.args[0]
    items = [deploy_module.inputs_list.item(i).text()
             for i in range(deploy_module.inputs_list.count())]
    failed = [t for t in items if t.startswith("✗")]
    assert len(items) == 4 and len(failed) == 1
    assert "corrupt" in failed[0] and "corrupt.dcm" in failed[0]
    assert "corrupt" in deploy_module.message.text()
    for path in images:
        assert (out / path.stem / "mask.png").is_file()
    lines = (out / "measurements.csv").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + the LV row of each segmented file
    assert len(report.succeeded) == 3
    # clicking another input shows it
    deploy_module.inputs_list.setCurrentRow(2)
    qtbot.mouseClick(deploy_module.inputs_list.viewport(), Qt.LeftButton,
                     pos=deploy_module.inputs_list.visualItemRect(
                         deploy_module.inputs_list.item(2)).center())
    assert deploy_module.current is deploy_module.results[2]


def test_the_first_result_is_listed_and_written_after_its_overlay_frame(
        qtbot, deploy_module, trained_model, tmp_path) -> None:
    """The overlay comes first; the list entry, measurements and files follow its frame,
    and they follow too when the viewer is not on screen (nothing is painted then)."""
    out = tmp_path / "out"
    deploy_module.set_config(model_config(trained_model, out))
    switch_on(qtbot, deploy_module)
    image = trained_model.val_images[0]
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        drop(deploy_module.drop_zone, [image])
    assert deploy_module.inputs_list.count() == 0  # its frame is not painted yet
    assert not (out / image.stem).exists()
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=60000):
        pass
    assert deploy_module.inputs_list.item(0).text() == f"✓ {image.stem}"
    assert (out / image.stem / "mask.png").is_file()
    assert deploy_module.measurements.rows()
    # the tab hidden: never painted, the timer lets the rest follow
    deploy_module.hide()
    second = trained_model.val_images[1]
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=60000):
        deploy_module.segment_paths([str(second)])
    assert deploy_module.inputs_list.count() == 2
    assert (out / second.stem / "mask.png").is_file()
    assert deploy_module.measurements.rows()[0]["input"] == second.stem


def test_memory_is_handed_back_once_the_user_pauses_dropping(
        qtbot, deploy_module, trained_model, tmp_path, monkeypatch) -> None:
    """A drop keeps its forward's memory for the next drop; a pause releases it, off the
    GUI thread."""
    import threading

    import dlp.deploy.batch as batch_module
    import dlp.gui.deploy.qt_deploy_module as module_file

    by_drop: list[str] = []
    after_pause: list[str] = []
    monkeypatch.setattr(batch_module, "release_free_memory",
                        lambda: by_drop.append(threading.current_thread().name))
    monkeypatch.setattr(module_file, "release_free_memory",
                        lambda: after_pause.append(threading.current_thread().name))
    deploy_module._memory_release.setInterval(300)
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=60000):
        drop(deploy_module.drop_zone, [trained_model.val_images[0]])
    assert by_drop == [] and after_pause == []
    qtbot.waitUntil(lambda: bool(after_pause), timeout=5000)
    assert after_pause == ["dlp-release-memory"]
    assert by_drop == []


def test_a_file_is_read_while_its_drag_hovers_and_not_again_at_the_drop(
        qtbot, deploy_module, trained_model, tmp_path) -> None:
    from dlp.deploy.inputs import load_input

    read: list[Path] = []

    def counting(item):
        read.append(Path(item.path))
        return load_input(item)

    deploy_module._early_read._read = counting
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    image = trained_model.val_images[0]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image))])
    zone = deploy_module.drop_zone
    centre = QPoint(zone.width() // 2, zone.height() // 2)
    QApplication.sendEvent(zone, QDragEnterEvent(centre, Qt.CopyAction, mime, Qt.LeftButton,
                                                 Qt.NoModifier))
    qtbot.waitUntil(lambda: read == [image], timeout=10000)  # before any drop
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=60000):
        QApplication.sendEvent(zone, QDropEvent(centre, Qt.CopyAction, mime, Qt.LeftButton,
                                                Qt.NoModifier))
    assert read == [image]
    assert deploy_module.last_drop_report.succeeded
    # a drag that leaves is forgotten after a moment: its drop would read the file again
    QApplication.sendEvent(zone, QDragEnterEvent(centre, Qt.CopyAction, mime, Qt.LeftButton,
                                                 Qt.NoModifier))
    qtbot.waitUntil(lambda: len(read) == 2, timeout=10000)
    deploy_module._early_read_expiry.setInterval(50)
    QApplication.sendEvent(zone, QDragLeaveEvent())
    qtbot.wait(300)
    with qtbot.waitSignal(deploy_module.drop_finished, timeout=60000):
        deploy_module.segment_paths([str(image)])
    assert read == [image] * 3


def test_the_drop_zone_frame_turns_blue_while_files_are_dragged_over_it(qtbot) -> None:
    from dlp.gui.deploy.qt_drop_zone import QtDropZone

    zone = QtDropZone()
    qtbot.addWidget(zone)
    zone.resize(500, 90)
    zone.show()
    qtbot.waitExposed(zone)

    def frame_colour() -> tuple[int, int, int]:
        image = zone.grab().toImage()
        # the dashed frame's top edge: its most saturated pixel
        pixels = [image.pixelColor(x, 1) for x in range(10, 490)]
        best = max(pixels, key=lambda c: c.saturation())
        return best.red(), best.green(), best.blue()

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile("/tmp/scan.dcm")])
    centre = QPoint(250, 45)
    r, g, b = frame_colour()
    assert abs(r - g) < 20 and abs(g - b) < 20  # grey at rest
    enter = QDragEnterEvent(centre, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(zone, enter)
    r, g, b = frame_colour()
    assert b > r + 80  # blue under a drag
    zone.resize(300, 120)  # drawn again at the new size, still blue
    qtbot.waitUntil(lambda: zone.grab().width() == 300)

    def right_edge():
        image = zone.grab().toImage()
        return max((image.pixelColor(298, y) for y in range(10, 110)),
                   key=lambda c: c.saturation())

    assert right_edge().blue() > right_edge().red() + 80
    QApplication.sendEvent(zone, QDropEvent(centre, Qt.CopyAction, mime, Qt.LeftButton,
                                            Qt.NoModifier))
    assert abs(right_edge().red() - right_edge().blue()) < 20  # grey again after the drop


def test_evaluate_view_lists_worst_first(qtbot, deploy_module, trained_model, tmp_path,
                                        monkeypatch) -> None:
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    view = deploy_module.evaluate_view
    view.images.set_text(str(trained_model.val_case_dir))
    view.truth.set_text(str(trained_model.contours_dir))
    qtbot.mouseClick(view.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: view.table.rowCount() == 8, timeout=120000)
    dice = [float(view.table.item(r, 1).text()) for r in range(8)]
    assert dice == sorted(dice)  # worst first
    assert f"{trained_model.val_dice:.3f} ±" in view.summary.text()
    k = view.confusion.rowCount()
    assert k == 2 and int(view.confusion.item(1, 1).text()) > 0
    assert (tmp_path / "out" / "evaluation" / "evaluation.csv").is_file()
    # a click on the Dice header sorts best first, another click worst first again
    header = view.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(1) + 5, header.height() // 2))
    flipped = [float(view.table.item(r, 1).text()) for r in range(8)]
    assert flipped == sorted(dice, reverse=True)
    qtbot.mouseClick(header.viewport(), Qt.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(1) + 5, header.height() // 2))
    # Export CSV… writes the table (with mean and std rows) where the user chose
    export = tmp_path / "export"
    export.mkdir()
    monkeypatch.setattr("PyQt5.QtWidgets.QFileDialog.getExistingDirectory",
                        staticmethod(lambda *a, **k: str(export)))
    qtbot.mouseClick(view.export_button, Qt.LeftButton)
    lines = (export / "evaluation.csv").read_text().splitlines()
    assert len(lines) == 1 + 8 + 2 and lines[-2].startswith("mean,")
    assert (export / "confusion_matrix.csv").read_text().startswith("truth \\ predicted,")
    # clicking the worst case opens it in the viewer
    worst = view.table.item(0, 0).data(Qt.UserRole)
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        qtbot.mouseClick(view.table.viewport(), Qt.LeftButton,
                         pos=view.table.visualItemRect(view.table.item(0, 0)).center())
    assert deploy_module.current.item.path == worst.path


def test_batch_runs_in_the_background_and_lists_failures(qtbot, deploy_module, trained_model,
                                                         tmp_path, monkeypatch) -> None:
    folder = tmp_path / "batch"
    shutil.copytree(trained_model.val_case_dir, folder / "case")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    deploy_module.set_config(model_config(trained_model, tmp_path / "unused"))
    switch_on(qtbot, deploy_module)
    panel = deploy_module.batch_panel
    panel.source.set_text(str(folder))
    panel.target.set_text(str(tmp_path / "batch-out"))
    qtbot.mouseClick(panel.start_button, Qt.LeftButton)
    assert panel.cancel_button.isEnabled()  # the GUI returned at once: the work is threaded
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=120000)
    texts = [panel.results.item(i).text() for i in range(panel.results.count())]
    assert any(t.startswith("✗ bad") and "bad.png" in t for t in texts)
    assert sum(t.startswith("✓") for t in texts) == 1  # the case folder is one series
    assert (tmp_path / "batch-out" / "failures.csv").is_file()
    assert "1 of 2 done, 1 failed" in panel.status.text()
    # a second batch of three studies, cancelled once the first result is listed
    studies = tmp_path / "studies"
    studies.mkdir()
    for case in sorted((trained_model.phantom / "images" / "challenge_training").iterdir()):
        path = sorted(case.glob("*.dcm"))[0]
        shutil.copy(path, studies / path.name)
    panel.source.set_text(str(studies))
    # The second study waits until the user's Cancel has reached the worker, so the
    # outcome does not depend on how fast this machine is.
    import time

    import dlp.deploy.batch as batch_module

    predict = batch_module.predict_item
    started = []

    def second_waits_for_cancel(session, item, *args, cancel=None, **kwargs):
        started.append(item)
        deadline = time.monotonic() + 30
        while len(started) > 1 and not cancel.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        return predict(session, item, *args, cancel=cancel, **kwargs)

    monkeypatch.setattr(batch_module, "predict_item", second_waits_for_cancel)
    panel.result_arrived.connect(lambda _r: qtbot.mouseClick(panel.cancel_button,
                                                             Qt.LeftButton))
    qtbot.mouseClick(panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=120000)
    assert panel.status.text().startswith("Cancelled: 1 of 3 done, 0 failed")
    assert panel.results.count() == 1


def test_a_nifti_volume_is_browsed_with_the_slice_slider(qtbot, deploy_module, trained_model,
                                                         tmp_path) -> None:
    import nibabel as nib

    from dlp.deploy.inputs import collect_inputs, load_input

    slices = [load_input(i).array[0] for i in collect_inputs(trained_model.val_images[:3])]
    slices[1] = slices[1] * 0  # an empty middle slice: nothing to segment there
    data = np.stack(slices).transpose(2, 1, 0).astype(np.int16)
    source = tmp_path / "stack.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.25, 1.25, 8.0, 1.0])), source)
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    viewer = deploy_module.viewer
    assert viewer.stack.currentWidget() is viewer.placeholder  # says what will appear there
    # dropped on the viewer itself rather than on the drop zone
    target = drop_target(deploy_module, viewer.placeholder)
    assert target is deploy_module
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        drop(target, [source])
    assert viewer.stack.currentWidget() is viewer.graphics
    assert drop_target(deploy_module, viewer.graphics.viewport()) is deploy_module
    assert viewer.slice_slider.maximum() == 2
    assert (viewer.overlay_rgba()[..., 3] > 0).any()
    viewer.slice_slider.setValue(1)
    assert viewer.slice_label.text() == "slice 2 / 3"
    assert not (viewer.overlay_rgba()[..., 3] > 0).any()
    qtbot.waitUntil(lambda: bool(deploy_module.measurements.rows()), timeout=10000)
    rows = deploy_module.measurements.rows()
    assert [r["slice"] for r in rows] == [1, 2, 3, "all"]
    assert rows[1]["area_mm2"] == 0.0
    volume = rows[3]["volume_ml"]
    assert volume == pytest.approx((rows[0]["pixels"] + rows[2]["pixels"]) * 1.25 * 1.25 * 8
                                   / 1000)
    # the table follows the slider: the selected row is the slice shown
    assert deploy_module.measurements.currentRow() == 1


def test_a_run_snapshot_and_the_train_tab_fill_the_form(qtbot, deploy_module, trained_model,
                                                        tmp_path) -> None:
    project = deploy_module.qt_project
    run = project.runs_dir / "run-0001"
    (run / "snapshots").mkdir(parents=True)
    shutil.copy(trained_model.deploy_net, run / "deploy.prototxt")
    for it in (100, 400):
        shutil.copy(trained_model.weights, run / "snapshots" / f"fcn_iter_{it}.caffemodel")
    project.notify_runs_changed()
    box = deploy_module.config_form.snapshot_box
    assert box.count() == 2 and box.itemText(1) == "iteration 400 of run-0001"
    box.setCurrentIndex(1)
    box.activated.emit(1)  # what a user's choice in the list emits
    config = deploy_module.config()
    assert config.deploy_net == str(run / "deploy.prototxt")
    assert config.weights == str(run / "snapshots" / "fcn_iter_400.caffemodel")
    # "Deploy this snapshot" from the Train tab loads it at once
    with qtbot.waitSignal(deploy_module.session_changed, timeout=60000,
                          check_params_cb=lambda *a: deploy_module.session is not None):
        project.request_deploy(str(trained_model.deploy_net), str(trained_model.weights))
    assert deploy_module.config().weights == str(trained_model.weights)
    assert deploy_module.config_form.status_state == "on"


@pytest.mark.parametrize("shut_down_first", [True, False])
def test_a_worker_ending_after_the_tab_is_gone_touches_nothing(qtbot, project_dir,
                                                               trained_model, tmp_path,
                                                               shut_down_first) -> None:
    from PyQt5.QtCore import QCoreApplication, QEvent

    from dlp.gui.deploy import QtDeployModule
    from dlp.gui.qt_project import QtProject
    from dlp.project import Project

    module = QtDeployModule(QtProject(Project.create(project_dir)))
    module.set_config(model_config(trained_model, tmp_path / "out"))
    module.load_model()  # the model loads in a worker thread
    worker = module._workers["load"]
    if shut_down_first:  # what the main window does on close (waits for the worker)
        module.shutdown()
    module.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    if not shut_down_first:
        worker.wait(60000)
    # The worker's last signals arrive now; pytest-qt fails the test if a slot raises
    # (before the fix: "wrapped C/C++ object of type QLineEdit has been deleted").
    QCoreApplication.processEvents()
    QCoreApplication.sendPostedEvents()
    QCoreApplication.processEvents()


def test_a_project_with_a_trained_run_opens_deploy_ready(qtbot, project_dir, trained_model,
                                                         tmp_path) -> None:
    """The demo's case: the user trained once and opens Deploy; nothing is left to fill."""
    from dlp.gui.deploy import QtDeployModule
    from dlp.gui.qt_project import QtProject
    from dlp.project import Project
    from tests.deploy.model_support import TRAIN_NET

    project = Project.create(project_dir)
    project.net_path.write_text(TRAIN_NET)
    qt_project = QtProject(project)
    module = QtDeployModule(qt_project)
    qtbot.addWidget(module)
    form = module.config_form
    # before any training: derive from the project's net, and say training comes first
    assert form.derive_box.isChecked() and form.train_net.text() == str(project.net_path)
    assert form.status_state == "off" and "train the net" in form.status_text.text()
    assert "train the net" in form.weights.edit.toolTip()
    # a run writes snapshots: Deploy picks the newest run's latest snapshot by itself
    run = project.runs_dir / "run-20260101-120000"
    (run / "snapshots").mkdir(parents=True)
    (run / "train_val.prototxt").write_text(TRAIN_NET)
    for it in (100, 200):
        shutil.copy(trained_model.weights, run / "snapshots" / f"fcn_iter_{it}.caffemodel")
    qt_project.notify_runs_changed()
    config = module.config()
    assert config.derive_from_train and config.train_net == str(run / "train_val.prototxt")
    assert config.weights == str(run / "snapshots" / "fcn_iter_200.caffemodel")
    assert form.snapshot_box.currentText() == "iteration 200 of run-20260101-120000"
    assert form.status_state == "ready"
    switch_on(qtbot, module)
    assert "2 classes" in form.status_text.text()
    # a project reopened later keeps what was chosen (the user's choice is not overridden)
    module.set_config(model_config(trained_model, tmp_path / "out"))
    module.shutdown()
    again = QtDeployModule(QtProject(Project.open(project_dir)))
    qtbot.addWidget(again)
    assert again.config().weights == str(trained_model.weights)
    assert not again.config().derive_from_train
    again.shutdown()


def right_drag(viewer, dx: int, dy: int) -> None:
    """Press the right button on the result view, move by (dx, dy) pixels, release."""
    from PyQt5.QtCore import QEvent
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtTest import QTest

    port = viewer.graphics.viewport()
    start = viewer.graphics.mapFromScene(viewer.result_view.sceneBoundingRect().center())
    QTest.mousePress(port, Qt.RightButton, Qt.NoModifier, start)
    for step in range(1, 6):
        QTest.qWait(20)  # pyqtgraph drops moves faster than its mouse rate limit
        pos = start + QPoint(dx * step // 5, dy * step // 5)
        QApplication.sendEvent(port, QMouseEvent(QEvent.MouseMove, pos, Qt.NoButton,
                                                 Qt.RightButton, Qt.NoModifier))
    QTest.mouseRelease(port, Qt.RightButton, Qt.NoModifier, start + QPoint(dx, dy))


def test_window_level_presets_file_default_and_mouse_drag(qtbot, deploy_module, trained_model,
                                                          tmp_path) -> None:
    import pydicom

    from dlp.data.readers import read_image

    # a DICOM naming two windows: the first is its default, the second a choice
    ds = pydicom.dcmread(trained_model.val_images[0])
    ds.WindowCenter, ds.WindowWidth = [300, 120], [700, 90]
    image = tmp_path / "two_windows.dcm"
    ds.save_as(image)
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        drop(deploy_module.drop_zone, [image])
    viewer = deploy_module.viewer
    file_window = read_image(image).window
    assert file_window is not None and viewer.window == pytest.approx(file_window)
    assert viewer.window_label.text() == f"L {file_window[0]:.0f}  W {file_window[1]:.0f}"
    assert file_window == (300.0, 700.0)
    viewer.window_box.setCurrentText("File window 2: L 120 W 90")
    assert viewer.window == (120.0, 90.0)
    viewer.window_box.setCurrentText("CT lung")
    assert viewer.window == (-600.0, 1500.0)
    viewer.window_box.setCurrentText("Full range")
    shown = deploy_module.current.prediction.volume.array[0]
    assert viewer.window[1] == pytest.approx(float(shown.max() - shown.min()))
    background = deploy_module.current.prediction.labels[0] == 0

    def assert_drawn_with_window() -> None:
        """Unsegmented pixels are drawn grey, windowed with the viewer's window."""
        grey = apply_window(shown, *viewer.window)[background]
        np.testing.assert_array_equal(viewer.shown_picture()[background],
                                      np.repeat(grey[:, None], 3, axis=1))

    assert_drawn_with_window()
    windowed = apply_window(shown, *viewer.window)
    assert (windowed.min(), windowed.max()) == (0, 255)  # full range: black to white
    # right-drag: right widens the window, up raises the level (radiology viewers' habit)
    before = viewer.window
    right_drag(viewer, 40, -30)
    assert viewer.window[1] > before[1] and viewer.window[0] > before[0]
    assert_drawn_with_window()
    # hovering reads the pixel out
    from PyQt5.QtCore import QEvent
    from PyQt5.QtGui import QMouseEvent

    port = viewer.graphics.viewport()
    target = viewer.graphics.mapFromScene(viewer.result_view.mapViewToScene(QPointF(20.5, 30.5)))
    # With its own screen position: QGraphicsView drops a hover move whose screen
    # position did not change.
    screen = QPointF(port.mapToGlobal(target))
    qtbot.wait(100)  # pyqtgraph ignores moves closer than its rate limit to the last one
    QApplication.sendEvent(port, QMouseEvent(QEvent.MouseMove, QPointF(target), screen, screen,
                                             Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    assert viewer.readout.text().startswith("row 30, col 20"), viewer.readout.text()
    assert f"value {shown[30, 20]:.0f}" in viewer.readout.text()


def test_how_an_image_is_fitted_to_the_model_is_stated(qtbot, deploy_module, trained_model,
                                                       tmp_path, monkeypatch) -> None:
    from PIL import Image

    from dlp.deploy.inputs import collect_inputs, load_input

    grey = load_input(collect_inputs(trained_model.val_images[:1])[0]).array[0]
    big = np.pad(grey, ((20, 30), (10, 40)), mode="reflect")
    Image.fromarray(np.clip(big / 8, 0, 255).astype(np.uint8)).save(tmp_path / "big.png")
    rgb = np.repeat(np.clip(grey / 8, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    form = deploy_module.config_form
    # without the dataset's manifest, a fully convolutional net tiles larger images
    deploy_module.set_config(model_config(trained_model, tmp_path / "out", manifest=""))
    switch_on(qtbot, deploy_module)
    assert "sliding-window tiling (25% overlap, gaussian blending)" in form.policy_label.text()
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        drop(deploy_module.drop_zone, [tmp_path / "big.png"])
    assert "114x114 image tiled with sliding window 64x64" in deploy_module.message.text()
    assert deploy_module.viewer.overlay_rgba().shape[:2] == (114, 114)
    # with it, a colour image is made grey as the dataset was, and the panel says so;
    # this one is opened with the drop zone's file dialog instead of dropped
    deploy_module.set_config(model_config(trained_model, tmp_path / "out"))
    switch_on(qtbot, deploy_module)
    assert "resized to 64x64 (the dataset's preprocessing)" in form.policy_label.text()
    monkeypatch.setattr("PyQt5.QtWidgets.QFileDialog.getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(tmp_path / "colour.png")], "")))
    with qtbot.waitSignal(deploy_module.results_shown, timeout=60000):
        deploy_module.drop_zone.open_files()
    assert "colour image converted to grey" in deploy_module.message.text()


def test_the_tab_opens_without_loading_torch_or_scipy(tmp_path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from PyQt5.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from dlp.gui.deploy import QtDeployModule\n"
        "from dlp.gui.qt_project import QtProject\n"
        "from dlp.project import Project\n"
        f"module = QtDeployModule(QtProject(Project.create({str(tmp_path / 'p')!r})))\n"
        "module.show()\n"
        "app.processEvents()\n"
        "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
