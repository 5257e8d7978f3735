"""Shipped records: used only for the settings and model files they were made with."""

from __future__ import annotations

import json
import os
import pathlib
import sys

import nbformat
import pytest

from helpers.lab import records
from helpers.lab.records import load_or_compute, load_record, save_record

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
import reproduce  # noqa: E402

SETTINGS = {"EPSILONS_255": [4, 8], "samples": 1000, "SEED": 0}
ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK_05 = "05_adversarial_training.ipynb"
NOTEBOOK_07 = "07_evaluating_robustness.ipynb"


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "gtsrb_robust.weights.h5"
    path.write_bytes(b"weights, first version")
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(records.RECORDS_DIR_VARIABLE, str(tmp_path / "records"))
    # Set, then deleted: monkeypatch restores the variable's absence after the test, even
    # when tools/reproduce.py sets it in os.environ itself.
    monkeypatch.setenv(records.RECOMPUTE_VARIABLE, "")
    monkeypatch.delenv(records.RECOMPUTE_VARIABLE)


def test_a_record_is_used_for_the_settings_and_model_files_it_was_made_with(model_file):
    files = {"gtsrb_robust": model_file}
    save_record("table", {"accuracy": 0.5}, dataset="gtsrb", settings=SETTINGS, model_files=files)
    record = load_record("table", dataset="gtsrb", settings=dict(SETTINGS), model_files=files)
    assert record is not None and record.data == {"accuracy": 0.5}
    assert record.settings == SETTINGS and "make reproduce" in record.describe()


def test_other_settings_are_computed_live_and_the_notebook_says_why(model_file, capsys):
    files = {"gtsrb_robust": model_file}
    save_record("table", {"accuracy": 0.5}, dataset="gtsrb", settings=SETTINGS, model_files=files)
    other = {**SETTINGS, "EPSILONS_255": [2]}
    assert load_record("table", dataset="gtsrb", settings=other, model_files=files) is None
    assert "other settings (EPSILONS_255)" in capsys.readouterr().out
    assert load_record("table", dataset="cifar10", settings=SETTINGS, model_files=files) is None
    assert "there is none" in capsys.readouterr().out


def test_a_changed_model_file_invalidates_the_record(model_file, capsys):
    files = {"gtsrb_robust": model_file}
    save_record("table", {"accuracy": 0.5}, dataset="gtsrb", settings=SETTINGS, model_files=files)
    model_file.write_bytes(b"weights, retrained")
    assert load_record("table", dataset="gtsrb", settings=SETTINGS, model_files=files) is None
    assert "other model files" in capsys.readouterr().out


def test_load_or_compute_computes_saves_under_reproduce_then_reuses(monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"value": (1, 2)}

    data, record = load_or_compute("tiny", compute, dataset="gtsrb", settings=SETTINGS)
    assert record is None and data == {"value": [1, 2]} and len(calls) == 1
    assert not records.record_path("tiny", "gtsrb").exists()  # a learner's run writes nothing

    monkeypatch.setenv(records.RECOMPUTE_VARIABLE, "1")
    load_or_compute("tiny", compute, dataset="gtsrb", settings=SETTINGS)
    assert records.record_path("tiny", "gtsrb").exists() and len(calls) == 2
    data, record = load_or_compute("tiny", compute, dataset="gtsrb", settings=SETTINGS)
    assert record is not None and len(calls) == 2  # resumable: up to date, not recomputed

    monkeypatch.delenv(records.RECOMPUTE_VARIABLE)
    _, record = load_or_compute("tiny", compute, dataset="gtsrb", settings=SETTINGS)
    assert record is not None and len(calls) == 2
    _, record = load_or_compute("tiny", compute, dataset="gtsrb", settings=SETTINGS, recompute=True)
    assert record is None and len(calls) == 3  # RECOMPUTE = True in a notebook


def test_an_unknown_recompute_mode_is_refused(monkeypatch):
    monkeypatch.setenv(records.RECOMPUTE_VARIABLE, "yes")
    with pytest.raises(ValueError, match="must be unset, 1 or force"):
        load_or_compute("tiny", dict, dataset="gtsrb", settings=SETTINGS)


def _tiny_notebook(folder: pathlib.Path, setting: int) -> pathlib.Path:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(f"DATASET = 'gtsrb'\nSETTING = {setting}")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "from helpers.lab.records import load_or_compute\n"
            "data, record = load_or_compute('tiny', lambda: {'double': 2 * SETTING},\n"
            "                               dataset=DATASET, settings={'SETTING': SETTING})\n"
        ),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = folder / "01_tiny.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
def test_reproduce_writes_a_record_then_skips_it(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _tiny_notebook(notebooks, setting=3)
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    arguments = ["--notebooks", str(notebooks), "--output-dir", str(tmp_path / "executed")]

    assert reproduce.main(arguments) == 0  # executes the notebook with papermill
    written = records.record_path("tiny", "gtsrb")
    assert json.loads(written.read_text())["data"] == {"double": 6}

    def must_not_run(path, output):
        raise AssertionError(f"{path.name} was up to date and should have been skipped")

    assert reproduce.main(arguments, execute=must_not_run) == 0

    _tiny_notebook(notebooks, setting=4)  # a changed default: the record is stale again
    ran = []
    assert reproduce.main(arguments, execute=lambda path, output: ran.append(path.name)) == 0
    assert ran == ["01_tiny.ipynb"]


def test_reproduce_refuses_to_write_smoke_results_over_the_shipped_records(monkeypatch, capsys):
    monkeypatch.delenv(records.RECORDS_DIR_VARIABLE)
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    assert reproduce.main([]) == 2
    assert "full-scale results" in capsys.readouterr().err


def _run_notebook(name: str, output: pathlib.Path, parameters: dict) -> str:
    """Runs notebooks/<name> in the current profile; returns everything its cells printed."""
    papermill = pytest.importorskip("papermill")
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    return "".join(
        item.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for item in cell.get("outputs", [])
        if item.get("output_type") == "stream"
    )


@pytest.fixture
def smoke_run(monkeypatch):
    """The smoke profile, with the data folder made absolute (notebooks run in notebooks/)."""
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    data_dir = pathlib.Path(os.environ.get("ADVLAB_DATA_DIR", "data"))
    monkeypatch.setenv("ADVLAB_DATA_DIR", str(data_dir.resolve()))


@pytest.mark.slow
def test_notebook_07_shows_its_record_only_for_the_settings_it_was_made_with(
    tmp_path, monkeypatch, smoke_run
):
    cheap = {"EPSILONS_255": [8], "TABLE_SAMPLES": 10, "EVAL_SAMPLES": 10, "SANITY_SAMPLES": 10}
    cheap |= {"APGD_STEPS": 5, "PGD_STEPS": 5, "PGD_RESTARTS": 1, "COMPARE_STEPS": [5]}

    monkeypatch.setenv(records.RECOMPUTE_VARIABLE, "1")  # as make reproduce runs it
    printed = _run_notebook(NOTEBOOK_07, tmp_path / "reproduce.ipynb", cheap)
    assert "record written" in printed
    assert records.record_path("robustness_table", "gtsrb").exists()

    monkeypatch.delenv(records.RECOMPUTE_VARIABLE)  # as a learner runs it
    printed = _run_notebook(NOTEBOOK_07, tmp_path / "learner.ipynb", cheap)
    assert "Shown: the shipped record gtsrb/robustness_table.json" in printed

    printed = _run_notebook(NOTEBOOK_07, tmp_path / "changed.ipynb", {**cheap, "PGD_STEPS": 4})
    assert "other settings (PGD_STEPS)" in printed and "Shown:" not in printed


@pytest.mark.slow
def test_notebook_05_shows_its_records_only_for_the_settings_they_were_made_with(
    tmp_path, monkeypatch, smoke_run
):
    cheap = {"METHODS": ["fgsm"], "CO_METHODS": ["fgsm"], "LIVE_IMAGES": 100}
    cheap |= {"COMPARISON_IMAGES": 100, "MONITOR_SAMPLES": 20, "EVAL_SAMPLES": 20}
    names = ["method_comparison", "catastrophic_overfitting"]

    monkeypatch.setenv(records.RECOMPUTE_VARIABLE, "1")  # as make reproduce runs it
    printed = _run_notebook(NOTEBOOK_05, tmp_path / "reproduce.ipynb", cheap)
    assert printed.count("record written") == 2
    assert all(records.record_path(name, "gtsrb").exists() for name in names)

    # A learner's run with another budget: the comparison, which depends on it, is computed
    # here; the catastrophic-overfitting runs (their own budget, CO_EPSILON_255) are shown.
    monkeypatch.delenv(records.RECOMPUTE_VARIABLE)
    printed = _run_notebook(NOTEBOOK_05, tmp_path / "learner.ipynb", {**cheap, "EPSILON_255": 4})
    assert "Shown: the shipped record gtsrb/catastrophic_overfitting.json" in printed
    expected = "No shipped record used for gtsrb/method_comparison: it was made with other settings"
    assert f"{expected} (EPSILON_255)" in printed
    assert "record written" not in printed


@pytest.mark.parametrize("notebook", reproduce.notebook_paths(), ids=lambda path: path.name[:2])
def test_the_shipped_records_match_their_notebooks_defaults(notebook, monkeypatch):
    """A learner who changes nothing sees every shipped record instead of a long computation."""
    monkeypatch.delenv(records.RECORDS_DIR_VARIABLE)
    monkeypatch.setenv("ADVLAB_PROFILE", "default")
    profile = reproduce.current_profile()
    for name in reproduce.record_names(notebook):
        assert reproduce.stale_reason(notebook, name, profile) is None, (
            f"{notebook.name}: the shipped record {name} is out of date: run "
            f'make reproduce REPRODUCE_ARGS="--only {notebook.name[:2]}" and commit it'
        )
