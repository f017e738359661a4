"""The Train tab's solver form: relevant fields only, lr preview, sources, fine-tuning report."""

from __future__ import annotations

import pytest

from dlp.engine.solver.lr_policies import learning_rate
from dlp.net.prototxt import read_solver
from tests.gui.train_support import make_train_project

pytestmark = pytest.mark.gui


@pytest.fixture
def module(make_main_window, project_dir):
    project = make_train_project(project_dir)
    window = make_main_window(project, modules=("Train",))
    return window.modules["Train"]


def test_lr_policy_shows_only_its_fields_and_previews_the_schedule(module):
    form = module.form
    assert form.lr_policy.currentText() == "step"
    visible = form.visible_fields()
    assert "gamma" in visible and "stepsize" in visible
    assert "power" not in visible and "stepvalue" not in visible
    assert "momentum" in visible and "momentum2" not in visible  # SGD
    iters, rates = form.lr_preview_data()
    solver = form.solver()
    assert list(rates) == pytest.approx([learning_rate(solver, int(i))[0] for i in iters])
    assert rates[0] == pytest.approx(0.05) and rates[-1] < 0.05

    form.lr_policy.setCurrentText("poly")
    form.power.setText("2")
    form.power.editingFinished.emit()
    assert "power" in form.visible_fields() and "gamma" not in form.visible_fields()
    iters, rates = form.lr_preview_data()
    assert rates[-1] == pytest.approx(0.0) and rates[0] == pytest.approx(0.05)
    form.type_combo.setCurrentText("Adam")
    assert {"momentum2", "delta"} <= set(form.visible_fields())

    form.best_metric.setCurrentText("dice_per_class[1]")
    form.keep_last.setValue(3)
    form.early_stop.setValue(4)
    assert module.is_modified()
    assert module.save()
    saved = read_solver(module.qt_project.solver_path)
    assert saved.lr_policy == "poly" and saved.power == 2 and saved.type == "Adam"
    assert saved.best_metric == "dice_per_class[1]" and saved.best_mode == "max"
    assert saved.keep_last_snapshots == 3 and saved.early_stop_rounds == 4
    assert not module.is_modified()


def test_a_bad_number_is_named_and_the_preview_says_why(module):
    form = module.form
    form.lr_policy.setCurrentText("multistep")
    form.stepvalue.setText("100, soon")
    form.stepvalue.editingFinished.emit()
    assert "stepvalue" in form.lr_problem.text()
    assert module.start_training() is None
    assert "stepvalue" in module.error_banner.label.text()
    assert module.monitors == {}


def test_best_metric_offers_per_class_outputs(module):
    items = [module.form.best_metric.itemText(i)
             for i in range(module.form.best_metric.count())]
    assert {"dice", "dice_per_class[0]", "dice_per_class[1]", "accuracy"} <= set(items)


def test_pretrained_weights_report_before_training(module, qtbot, tmp_path):
    from dlp.engine.net import Net
    from dlp.engine.weights import write_caffemodel

    net = Net(module.form.net_for_training(), "TRAIN")
    weights = net.to_net_parameter()
    net.close()
    for layer in weights.layer:
        if layer.name == "score":
            layer.name = "score_other_task"  # a fine-tuning source with another head
    path = tmp_path / "pretrained.caffemodel"
    write_caffemodel(weights, path)

    with qtbot.waitSignal(module.form.weights_changed):
        module.form.set_weights([str(path)])
    qtbot.waitUntil(lambda: module._report_worker is None, timeout=30000)
    report = module.last_weight_report
    assert report.matched == ["conv1"] and report.missing == ["score"]
    assert report.unused == ["score_other_task"]
    text = module.form.weights_report.text()
    assert "1</b> layer(s) copied: conv1" in text and "score" in text
    assert module._state()["weights"] == [str(path)]


def test_an_untouched_form_is_not_modified(make_main_window, project_dir):
    from dlp.project import Project

    window = make_main_window(Project.open_or_create(project_dir), modules=("Train",))
    module = window.modules["Train"]
    assert not module.is_modified()  # no solver file yet: the default is not a change
    assert not module.train_button.isEnabled()  # and no net to train
    from PyQt5.QtWidgets import QLabel

    assert any("No net" in label.text() for label in module.form.findChildren(QLabel))


def test_lr_preview_spans_zero_to_the_rate_even_when_flat(module):
    form = module.form
    form.lr_policy.setCurrentText("multistep")
    form.stepvalue.setText("100000")  # beyond max_iter: the rate never drops
    form.stepvalue.editingFinished.emit()
    _iters, rates = form.lr_preview_data()
    assert list(rates) == pytest.approx([0.05] * len(rates))
    (x_low, x_high), (y_low, y_high) = form.lr_plot.getPlotItem().viewRange()
    assert y_low == pytest.approx(0.0)  # a rate is never negative
    assert 0.05 < y_high <= 0.06  # the flat line sits near the top, not at "0"
    assert x_low <= 0 and x_high >= form.max_iter.value()
    labels = [text for _value, text in form.lr_plot.getPlotItem().getAxis("left")._tickLevels[0]]
    assert "0.05" in labels  # plain decimals a user reads, no SI prefix or 5e-2


def test_random_seed_is_either_random_or_a_fixed_number(module):
    form = module.form
    assert form.fixed_seed.isChecked() and form.random_seed.value() == 7  # from the file
    form.fixed_seed.setChecked(False)
    assert not form.random_seed.isEnabled()
    assert form.solver().random_seed == -1  # Caffe's "not set": a new seed each run
    form.fixed_seed.setChecked(True)
    form.random_seed.setValue(42)
    assert form.solver().random_seed == 42
    unset = form.solver()
    unset.random_seed = -1
    form.set_solver(unset)
    assert not form.fixed_seed.isChecked() and not form.random_seed.isEnabled()


def test_form_speaks_plainly_and_tooltips_name_the_caffe_fields(module):
    form = module.form
    for name, widget in form._rows.items():
        caffe_field = name if name != "device" else "solver_mode"
        assert caffe_field in widget.toolTip(), name
        assert form._row_labels[name].toolTip() == widget.toolTip()
    captions = {name: label.text() for name, label in form._row_labels.items()}
    assert captions["max_iter"] == "Training iterations"
    assert captions["test_interval"] == "Validate every"
    assert "best_mode" in form.best_mode.toolTip()
    assert [form.best_mode.itemText(i) for i in range(2)] == ["higher", "lower"]
    form.best_mode.setCurrentIndex(1)
    form.best_metric.setCurrentText("dice")
    assert form.solver().best_mode == "min"


def test_progress_before_any_run_counts_to_max_iter(module):
    assert module.shown is None
    assert module.progress.maximum() == module.form.max_iter.value() == 3000
    assert module.progress.text() == "iteration 0 / 3000"
    module.form.max_iter.setValue(600)
    assert module.progress.text() == "iteration 0 / 600"
