"""Every notebook runs with ``DATASET = "cifar10"`` and is about CIFAR-10 throughout.

Each notebook is executed with papermill in the smoke profile on the offline CIFAR-10 copy,
in the course's order (a model trained by one notebook is found by the next, as for a
learner), and its outputs are read back: the data description names CIFAR-10's classes, and
no output mentions GTSRB, its models or its class names. Notebook 01 compares the two data
sets on purpose, so only its description is checked.
"""

from __future__ import annotations

import os
import pathlib
import re

import nbformat
import pytest

from helpers.archives import gtsrb

papermill = pytest.importorskip("papermill")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CIFAR10_CLASSES = "airplane, automobile, bird, cat"  # printed with the data's description
# Words that only a GTSRB run prints: its name, its models' names, and its class names.
GTSRB_WORDS = re.compile(
    "(?i:gtsrb)|" + "|".join(rf"\b{re.escape(name)}(?!\w)" for name in gtsrb.CLASS_NAMES)
)

# The GTSRB run of `make test` covers every method and budget; here fewer keep CI short.
CHEAPER = {
    "04_pgd": {"EPSILONS_255": [0, 8], "IMAGES_PER_CLASS": 2},
    "05_adversarial_training": {"METHODS": ["n_fgsm"], "CO_METHODS": ["fgsm"]},
    "07_evaluating_robustness": {"EPSILONS_255": [8], "COMPARE_STEPS": [10]},
}


def _text_outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output:
                texts.append(output["data"].get("text/plain", ""))
            elif output.get("output_type") == "error":
                texts.append("\n".join(output.get("traceback", [])))
    return "\n".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_on_cifar10_throughout(path, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    data_dir = os.environ.get("ADVLAB_DATA_DIR")
    if data_dir:  # relative to the repository root; the kernel runs in notebooks/
        monkeypatch.setenv("ADVLAB_DATA_DIR", str((ROOT / data_dir).resolve()))
    output = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters={"DATASET": "cifar10", **CHEAPER.get(path.stem, {})},
        kernel_name="python3",
        cwd=str(path.parent),
        progress_bar=False,
    )
    text = _text_outputs(nbformat.read(output, as_version=4))
    assert re.search(r"^DATASET\s+: 'cifar10'", text, re.M), "the run description"
    assert CIFAR10_CLASSES in text, "the data description names CIFAR-10's classes"
    if not path.name.startswith("01_"):
        found = sorted({match.group(0) for match in GTSRB_WORDS.finditer(text)})
        assert not found, f"GTSRB shows up in a CIFAR-10 run: {found}"
