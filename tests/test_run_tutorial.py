"""``tools/run_tutorial.py``: which notebooks run, in which order, and what the summary says.

Most tests replace papermill by a stand-in; one runs two tiny throwaway notebooks in a real
kernel to check the working directory, the profile and the report of a failing cell.
"""

from __future__ import annotations

import importlib.util
import io
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "run_tutorial", ROOT / "tools" / "run_tutorial.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_tutorial = _load_tool()


def _write_notebook(path: pathlib.Path, *sources: str) -> pathlib.Path:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def notebooks_dir(tmp_path) -> pathlib.Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("10_ten.ipynb", "02_two.ipynb", "01_one.ipynb", "notes.ipynb", "3_short.ipynb"):
        _write_notebook(folder / name, "x = 1")
    return folder


class FakeClock:
    """Advances by the given number of seconds at each call."""

    def __init__(self, *steps: float):
        self.now, self.steps = 0.0, list(steps)

    def __call__(self) -> float:
        self.now += self.steps.pop(0) if self.steps else 0.0
        return self.now


class CellError(Exception):
    """Looks like papermill's PapermillExecutionError."""

    def __init__(self):
        super().__init__("cell failed")
        self.cell_index, self.exec_count = 7, 5
        self.ename, self.evalue = "ValueError", "EPSILON must be positive\n(more detail)"


def _names(paths) -> list[str]:
    return [path.name for path in paths]


def test_discovers_numbered_notebooks_in_numeric_order(notebooks_dir):
    paths = run_tutorial.notebook_paths(notebooks_dir)
    assert _names(run_tutorial.select_notebooks(paths)) == [
        "01_one.ipynb",
        "02_two.ipynb",
        "10_ten.ipynb",
    ]


@pytest.mark.parametrize(
    "only, expected",
    [
        (["10", "1"], ["01_one.ipynb", "10_ten.ipynb"]),  # numeric order, not the given one
        (["02_two"], ["02_two.ipynb"]),
        (["02_two.ipynb", "02"], ["02_two.ipynb"]),  # no duplicates
    ],
)
def test_only_selects_a_subset(notebooks_dir, only, expected):
    paths = run_tutorial.notebook_paths(notebooks_dir)
    assert _names(run_tutorial.select_notebooks(paths, only)) == expected


def test_unknown_notebook_is_an_error_naming_the_choices(notebooks_dir):
    paths = run_tutorial.notebook_paths(notebooks_dir)
    with pytest.raises(ValueError, match=r"'05'.*01, 02, 10"):
        run_tutorial.select_notebooks(paths, ["05"])


def _fake_execute(failing: set[str], calls: list):
    def execute(path, output):
        calls.append((path.name, output))
        output.write_text("{}")
        if path.name in failing:
            raise CellError()

    return execute


def test_a_failure_is_reported_and_the_others_still_run(notebooks_dir, tmp_path):
    paths = run_tutorial.select_notebooks(run_tutorial.notebook_paths(notebooks_dir))
    calls, stream = [], io.StringIO()
    runs = run_tutorial.run_notebooks(
        paths,
        tmp_path / "executed",
        execute=_fake_execute({"02_two.ipynb"}, calls),
        stream=stream,
        clock=FakeClock(0, 54, 0, 30, 0, 600),
    )
    assert [name for name, _ in calls] == ["01_one.ipynb", "02_two.ipynb", "10_ten.ipynb"]
    assert calls[0][1] == tmp_path / "executed" / "01_one.ipynb"
    assert [run.status for run in runs] == ["ok", "FAILED", "ok"]
    assert [run.seconds for run in runs] == [54, 30, 600]
    assert runs[1].failure == "cell 7 (In [5]): ValueError: EPSILON must be positive"
    progress = stream.getvalue()
    assert "[2/3] 02_two.ipynb" in progress
    assert "FAILED after 0.5 min at cell 7 (In [5])" in progress
    assert run_tutorial.exit_code(runs) == 1


def test_fail_fast_stops_at_the_first_failure(notebooks_dir, tmp_path):
    paths = run_tutorial.select_notebooks(run_tutorial.notebook_paths(notebooks_dir))
    calls = []
    runs = run_tutorial.run_notebooks(
        paths,
        tmp_path,
        execute=_fake_execute({"01_one.ipynb"}, calls),
        fail_fast=True,
        stream=io.StringIO(),
    )
    assert len(calls) == 1
    assert [run.status for run in runs] == ["FAILED", "not run", "not run"]
    assert runs[2].seconds is None


def test_summary_table_lists_status_minutes_total_and_failures():
    runs = [
        run_tutorial.NotebookRun(pathlib.Path("01_data.ipynb"), "ok", 54.0),
        run_tutorial.NotebookRun(
            pathlib.Path("02_cnn_training.ipynb"), "FAILED", 30.0, "cell 7 (In [5]): ValueError: x"
        ),
        run_tutorial.NotebookRun(pathlib.Path("03_fgsm.ipynb")),
    ]
    assert run_tutorial.summary_table(runs) == (
        "notebook               status   minutes\n"
        "---------------------  -------  -------\n"
        "01_data.ipynb          ok           0.9\n"
        "02_cnn_training.ipynb  FAILED       0.5\n"
        "03_fgsm.ipynb          not run        -\n"
        "total                               1.4\n"
        "\n"
        "02_cnn_training.ipynb failed at cell 7 (In [5]): ValueError: x"
    )


def test_exit_codes():
    def runs(*statuses):
        return [run_tutorial.NotebookRun(pathlib.Path("01_a.ipynb"), s) for s in statuses]

    assert run_tutorial.exit_code(runs("ok", "ok")) == 0
    assert run_tutorial.exit_code(runs("ok", "FAILED")) == 1
    assert run_tutorial.exit_code(runs("FAILED", "not run")) == 1
    assert run_tutorial.exit_code(runs("ok", "interrupted", "not run")) == 130


def test_bad_option_values_exit_2(notebooks_dir, capsys):
    assert run_tutorial.main(["--notebooks", str(notebooks_dir), "--only", "99"]) == 2
    assert "no notebook matches '99'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_tutorial.main(["--profile", "huge"])


@pytest.mark.slow
def test_runs_real_notebooks_from_their_folder(tmp_path, monkeypatch, capsys):
    """Two throwaway notebooks in a real kernel: cwd, profile, failing cell, summary."""
    monkeypatch.setenv("ADVLAB_PROFILE", "default")  # main() sets it; restored afterwards
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(
        folder / "01_where.ipynb",
        "import os\nimport pathlib",
        "print(pathlib.Path.cwd().name, os.environ['ADVLAB_PROFILE'])",
    )
    _write_notebook(folder / "02_broken.ipynb", "x = 1", "raise ValueError('on purpose')")
    executed = tmp_path / "executed"
    code = run_tutorial.main(
        ["--notebooks", str(folder), "--profile", "smoke", "--output-dir", str(executed)]
    )
    printed = capsys.readouterr().out
    assert code == 1
    first = nbformat.read(executed / "01_where.ipynb", as_version=4)
    assert first.cells[1].outputs[0]["text"] == "notebooks smoke\n"
    assert (executed / "02_broken.ipynb").exists()
    assert "02_broken.ipynb failed at cell 1 (In [2]): ValueError: on purpose" in printed
    assert "in the smoke profile" in printed


def test_dataset_option_sets_every_notebooks_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADVLAB_PROFILE", "smoke")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    path = _write_notebook(folder / "01_which.ipynb", 'DATASET = "gtsrb"', "print(DATASET)")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["language_info"] = {"name": "python"}  # papermill injects Python
    nbformat.write(notebook, path)
    executed = tmp_path / "executed"
    code = run_tutorial.main(
        ["--notebooks", str(folder), "--dataset", "cifar10", "--output-dir", str(executed)]
    )
    assert code == 0
    assert "with DATASET='cifar10'" in capsys.readouterr().out
    outputs = nbformat.read(executed / "01_which.ipynb", as_version=4).cells[-1].outputs
    assert outputs[0]["text"] == "cifar10\n"
    with pytest.raises(SystemExit):
        run_tutorial.main(["--notebooks", str(folder), "--dataset", "mnist"])
