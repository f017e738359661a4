"""The Data tab driven as a user would: fill the form, Build, watch the worker finish,
read the report, see the dataset listed and its image/label pairs overlaid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtWidgets import QMessageBox

from dlp.data.phantom import generate_phantom
from dlp.gui.data import QtDataModule
from dlp.gui.data.build_request import BuildRequest
from dlp.gui.data.samples import read_samples, spread_keys
from dlp.gui.qt_project import QtProject
from dlp.project import Project


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory):
    return generate_phantom(tmp_path_factory.mktemp("phantom"), cases=3, slices=2, size=64,
                            seed=3)


@pytest.fixture
def data_tab(qtbot, project_dir: Path):
    qt_project = QtProject(Project.create(project_dir))
    module = QtDataModule(qt_project)
    qtbot.addWidget(module)
    module.resize(1200, 800)
    module.show()
    yield module
    module.shutdown()


def fill_form(module: QtDataModule, images: Path, contours: Path, name: str = "phantom") -> None:
    form = module.form
    form.kind_combo.setCurrentIndex(form.kind_combo.findData("sunnybrook"))
    form.images_field.setText(str(images))
    form.second_field.setText(str(contours))
    form.name_edit.setText(name)
    form.size_spin.setValue(64)
    form.val_spin.setValue(34)


def build_and_wait(qtbot, module: QtDataModule) -> None:
    worker = module.form.start_build()
    assert worker is not None, module.form.status_label.text()
    qtbot.waitUntil(lambda: not module.form.is_building(), timeout=30000)


def test_build_from_a_phantom_lists_the_dataset_and_shows_overlaid_samples(
    qtbot, data_tab: QtDataModule, phantom
) -> None:
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir)
    build_and_wait(qtbot, data_tab)
    form, browser = data_tab.form, data_tab.browser
    assert form.status_label.text().startswith("Built "), form.status_label.text()
    assert "train 8, val 4 records" in form.status_label.text()
    assert form.report_tree.topLevelItemCount() == 0
    assert form.build_button.isEnabled()

    # The browser lists the new dataset with its manifest and selects it.
    assert [browser.table.item(r, 0).text() for r in range(browser.table.rowCount())] == [
        "phantom"]
    assert (browser.table.item(0, 1).text(), browser.table.item(0, 2).text()) == ("8", "4")
    assert browser.table.item(0, 4).text() == "1x64x64"
    assert "LV" in browser.details.text() or "lv" in browser.details.text().lower()
    assert "% of pixels" in browser.details.text()
    # The grid shows pairs from the LMDB, each with a label present on the image.
    tiles = browser.grid.tiles
    assert len(tiles) == 8
    assert all(tile.sample.label_classes() == [1] for tile in tiles)
    assert not tiles[0].picture.pixmap().isNull()
    browser.split_combo.setCurrentText("val")
    assert len(browser.grid.tiles) == 4
    assert {t.sample.split for t in browser.grid.tiles} == {"val"}


def test_the_overlay_colours_exactly_the_labelled_pixels(tmp_path: Path, phantom) -> None:
    from dlp.data.builder import build_dataset

    request = BuildRequest(images=str(phantom.images_dir), labels=str(phantom.contours_dir),
                           name="p", size=64)
    report = build_dataset(request.make_source(), tmp_path / "p", request.make_options())
    sample = read_samples(report.manifest, "train", count=1)[0]
    rgb = sample.overlay(opacity=1.0)
    coloured = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])
    assert np.array_equal(coloured, sample.label != 0)


def test_a_corrupt_file_is_listed_in_the_report(qtbot, data_tab, phantom, tmp_path) -> None:
    import shutil

    images = tmp_path / "images"
    shutil.copytree(phantom.images_dir, images)
    victim = sorted(images.rglob("*.dcm"))[0]
    victim.write_bytes(b"not a dicom file")
    fill_form(data_tab, images, phantom.contours_dir, name="with-problem")
    build_and_wait(qtbot, data_tab)
    form = data_tab.form
    assert "skipped" in form.status_label.text()
    rows = [(form.report_tree.topLevelItem(i).text(0), form.report_tree.topLevelItem(i).text(1))
            for i in range(form.report_tree.topLevelItemCount())]
    assert any(victim.name in path for path, _ in rows), rows
    assert all(reason for _, reason in rows)


def test_a_missing_folder_is_refused_with_the_field_named(data_tab, tmp_path) -> None:
    fill_form(data_tab, tmp_path / "nope", tmp_path)
    assert data_tab.form.start_build() is None
    assert "images folder" in data_tab.form.status_label.text()
    assert "does not exist" in data_tab.form.status_label.text()
    data_tab.form.name_edit.setText("bad name")
    data_tab.form.images_field.setText(str(tmp_path))
    assert data_tab.form.start_build() is None
    assert "dataset name 'bad name'" in data_tab.form.status_label.text()


def test_a_folder_without_images_fails_clearly_and_the_tab_stays_usable(
    qtbot, data_tab, phantom, tmp_path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fill_form(data_tab, empty, empty, name="broken")
    build_and_wait(qtbot, data_tab)
    form = data_tab.form
    assert form.status_label.text().startswith("Build failed: ")
    assert "Traceback" not in form.status_label.text()
    assert form.build_button.isEnabled()
    assert not (data_tab.qt_project.datasets_dir / "broken").exists()
    # The same tab then builds a good dataset.
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="good")
    build_and_wait(qtbot, data_tab)
    assert form.status_label.text().startswith("Built ")


def test_cancel_stops_the_build_and_writes_nothing(qtbot, data_tab, phantom) -> None:
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="cancelled")
    worker = data_tab.form.start_build()
    data_tab.form.progress.cancel_button.click()
    qtbot.waitUntil(lambda: not data_tab.form.is_building(), timeout=30000)
    assert worker is not None
    assert "cancelled" in data_tab.form.status_label.text()
    assert not (data_tab.qt_project.datasets_dir / "cancelled").exists()
    assert data_tab.browser.table.rowCount() == 0


def test_replacing_an_existing_dataset_asks_first(qtbot, data_tab, phantom, monkeypatch) -> None:
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="twice")
    build_and_wait(qtbot, data_tab)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or QMessageBox.No))
    assert data_tab.form.start_build() is None
    assert "exists" in asked[0]


def test_form_values_are_remembered_in_the_project(qtbot, data_tab, phantom, project_dir) -> None:
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="remembered")
    data_tab.form.seed_spin.setValue(7)
    build_and_wait(qtbot, data_tab)
    again = QtDataModule(QtProject(Project.open(project_dir)))
    qtbot.addWidget(again)
    assert again.form.name_edit.text() == "remembered"
    assert again.form.seed_spin.value() == 7
    assert again.form.images_field.text() == str(phantom.images_dir)


def test_a_broken_manifest_is_listed_with_its_reason(qtbot, data_tab) -> None:
    broken = data_tab.qt_project.datasets_dir / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{}")
    data_tab.qt_project.notify_datasets_changed()
    table = data_tab.browser.table
    assert table.item(0, 0).text() == "broken"
    assert "not a DLP dataset manifest" in table.item(0, 5).text()
    assert "Unusable" in data_tab.browser.details.text()


def test_spread_keys_samples_across_the_whole_database() -> None:
    keys = [f"{i:09d}" for i in range(100)]
    assert spread_keys(keys, 3) == ["000000000", "000000050", "000000099"]
    assert spread_keys(keys[:2], 8) == keys[:2]
    assert spread_keys(keys, 0) == []


def test_the_form_follows_a_project_switch_and_offers_the_demo_phantom(
    qtbot, data_tab, phantom, tmp_path
) -> None:
    from dlp.demo import build_demo_content, ensure_demo_project

    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="first-project")
    build_and_wait(qtbot, data_tab)
    demo = ensure_demo_project(tmp_path / "demo")
    build_demo_content(demo, cases=2, slices=2, size=64)
    data_tab.qt_project.set_project(demo)
    form = data_tab.form
    assert form.images_field.text() == str(demo.root / "sources/sunnybrook-phantom/images")
    assert form.classes_combo.currentText() == "endo,epi"
    assert form.size_spin.value() == 64  # the demo dataset's size
    assert [data_tab.browser.table.item(r, 0).text()
            for r in range(data_tab.browser.table.rowCount())] == ["sunnybrook-phantom"]
    build_and_wait(qtbot, data_tab)
    assert form.status_label.text().startswith("Built "), form.status_label.text()
    assert len(data_tab.browser.selected_entry().manifest.classes) == 3  # bg, LV, myocardium


def test_browser_shows_a_legend_and_the_build_report_of_a_dataset(
    qtbot, data_tab, phantom, tmp_path
) -> None:
    import shutil

    images = tmp_path / "images"
    shutil.copytree(phantom.images_dir, images)
    sorted(images.rglob("*.dcm"))[0].write_bytes(b"broken")
    fill_form(data_tab, images, phantom.contours_dir, name="reported")
    build_and_wait(qtbot, data_tab)
    browser = data_tab.browser
    assert "LV" in browser.legend.text() and "&#9632;" in browser.legend.text()
    assert "background" not in browser.legend.text()  # transparent in the overlay
    assert "Build report:</b> 1 unusable file(s)" in browser.details.text()
    # each sample names the classes its label shows, as the legend does
    captions = [tile.caption.text() for tile in browser.grid.tiles]
    assert captions and all("shows LV" in c or "background only" in c for c in captions)
    assert any("shows LV" in c for c in captions)


def test_delete_asks_then_removes_the_dataset(qtbot, data_tab, phantom, monkeypatch) -> None:
    fill_form(data_tab, phantom.images_dir, phantom.contours_dir, name="doomed")
    build_and_wait(qtbot, data_tab)
    answers = [QMessageBox.No, QMessageBox.Yes]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: answers.pop(0)))
    browser = data_tab.browser
    assert not browser.delete_selected()
    assert (data_tab.qt_project.datasets_dir / "doomed").exists()
    browser.delete_button.click()
    assert not (data_tab.qt_project.datasets_dir / "doomed").exists()
    assert browser.table.rowCount() == 0
    assert not browser.delete_button.isEnabled()


def _disc(size: int, cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.uint8)


def test_build_from_an_images_and_masks_folder(qtbot, data_tab, tmp_path) -> None:
    from PIL import Image

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(4):
        mask = _disc(48, 20 + i, 24, 8)
        Image.fromarray((40 + 150 * mask).astype(np.uint8)).save(images / f"case{i}.png")
        Image.fromarray(mask).save(masks / f"case{i}.png")
    form = data_tab.form
    form.kind_combo.setCurrentIndex(form.kind_combo.findData("folder"))
    assert form.second_label.text() == "Masks:"
    form.images_field.setText(str(images))
    form.second_field.setText(str(masks))
    form.name_edit.setText("pngs")
    form.size_spin.setValue(48)
    form.classes_combo.setCurrentText("background,disc")
    form.val_spin.setValue(25)
    build_and_wait(qtbot, data_tab)
    assert form.status_label.text().startswith("Built "), form.status_label.text()
    entry = data_tab.browser.selected_entry()
    assert entry.manifest.classes == ["background", "disc"]
    assert sum(info.count for info in entry.manifest.splits.values()) == 4
    assert all(tile.sample.label_classes() == [1] for tile in data_tab.browser.grid.tiles)


def test_build_from_nifti_volumes(qtbot, data_tab, tmp_path) -> None:
    import nibabel as nib

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for case in range(2):
        label = np.stack([_disc(32, 16, 16, 5 + z) for z in range(3)], axis=-1)  # (x, y, z)
        image = (100 + 300 * label.astype(np.int16)).astype(np.int16)
        nib.save(nib.Nifti1Image(image, np.eye(4)), images / f"p{case}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), labels / f"p{case}.nii.gz")
    form = data_tab.form
    form.kind_combo.setCurrentIndex(form.kind_combo.findData("nifti"))
    assert form.axis_combo.isVisible() and form.second_label.text() == "Labels:"
    form.images_field.setText(str(images))
    form.second_field.setText(str(labels))
    form.name_edit.setText("volumes")
    form.size_spin.setValue(32)
    form.val_spin.setValue(50)
    build_and_wait(qtbot, data_tab)
    assert form.status_label.text().startswith("Built "), form.status_label.text()
    manifest = data_tab.browser.selected_entry().manifest
    assert manifest.splits["train"].count == 3 and manifest.splits["val"].count == 3
