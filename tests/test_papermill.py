"""Notebook parameters work with papermill: ``-p DATASET cifar10`` really switches dataset.

Runs notebook 01 in the smoke profile through papermill's Python API and reads the
executed notebook's outputs.
"""

from __future__ import annotations

import os
import pathlib
import re

import nbformat
import pytest

papermill = pytest.importorskip("papermill")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
CIFAR10_CLASS_NAMES = "airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck"


def _stdout(cell) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


@pytest.mark.slow
def test_dataset_parameter_reaches_notebook_01(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    data_dir = os.environ.get("ADVLAB_DATA_DIR")
    if data_dir:  # relative paths are meant from the repository root, the kernel runs in notebooks/
        monkeypatch.setenv("ADVLAB_DATA_DIR", str((ROOT / data_dir).resolve()))
    output = tmp_path / "01_data_cifar10.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "01_data.ipynb"),
        str(output),
        parameters={"DATASET": "cifar10"},
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
    )
    executed = nbformat.read(output, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1, "papermill should inject one cell after the parameters cell"
    printed = [_stdout(cell) for cell in executed.cells if cell.cell_type == "code"]
    run_description = next(text for text in printed if text.startswith("profile"))
    assert re.search(r"^profile\s+: smoke", run_description, re.MULTILINE)
    assert re.search(r"^DATASET\s+: 'cifar10'", run_description, re.MULTILINE)
    assert re.search(r"^LIMIT\s+: 1000", run_description, re.MULTILINE)
    loaded = next(text for text in printed if text.startswith("dataset:"))
    assert "dataset: cifar10, 10 classes" in loaded
    assert CIFAR10_CLASS_NAMES in loaded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("notebook", "parameters", "message"),
    [
        ("02_cnn_training.ipynb", {"EPOCHS": 5}, "only apply when training here"),
        ("06_preprocessing_defenses.ipynb", {"EVAL_SAMPLES": 5000}, "EVAL_SAMPLES = 5,000 asks"),
        ("07_evaluating_robustness.ipynb", {"SANITY_SAMPLES": 0}, "SANITY_SAMPLES must be"),
        ("08_uncertainty.ipynb", {"ATTACK_SAMPLES": 1500}, "ATTACK_SAMPLES = 1,500 asks"),
    ],
)
def test_a_parameter_that_cannot_be_used_stops_after_the_parameters_cell(
    tmp_path, monkeypatch, notebook, parameters, message
):
    # In the smoke profile every split holds at most 1,000 images: asking for more is
    # refused before any data is loaded, instead of being cut to what there is.
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOKS_DIR / notebook),
            str(tmp_path / notebook),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(NOTEBOOKS_DIR),
            progress_bar=False,
        )
    assert raised.value.ename == "ValueError"
    assert message in raised.value.evalue
    executed = nbformat.read(tmp_path / notebook, as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]  # papermill adds notes
    injected = next(
        index
        for index, cell in enumerate(code)
        if "injected-parameters" in cell.metadata.get("tags", [])
    )
    failing = next(
        index
        for index, cell in enumerate(code)
        if any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    )
    assert failing == injected + 1, "it stops in the cell after the parameters"
