"""Structure of every notebook: the fixed opening and closing, and no stored outputs.

Opening (STYLE.md): H1 title, Colab badge to the notebook's own path, a line with
prerequisites and runtime on CPU and on a Colab GPU, an "Overview" section, one setup code
cell (the only place that may install packages, inside its Colab guard), then one code cell
tagged ``parameters`` holding UPPER_CASE names with literal values. Closing: "Summary" and
"Exercises" after the last code cell, and the navigation line last. Badge and navigation are
written by ``tools/update_notebooks.py``, whose ``--check`` must find nothing to change.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "update_notebooks", ROOT / "tools" / "update_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


update_notebooks = _load_tool()
NOTEBOOK_PATHS = update_notebooks.notebook_paths(NOTEBOOKS_DIR)

UPPER_CASE = re.compile(r"^[A-Z][A-Z0-9_]*$")
RUNTIME = re.compile(r"\b\d+(?:\.\d+)?\s*(?:min|minutes?|s|sec|seconds|h|hours?)\b")
PIP_INSTALL = re.compile(r"\bpip3?\b[\"',\s]*install\b")
COLAB_GUARD = re.compile(r"\bIN_COLAB\b|google\.colab")


def _read(path: pathlib.Path):
    return nbformat.read(path, as_version=4)


def _python(source: str) -> ast.Module:
    """Parses a code cell, turning IPython magics (``%...``, ``!...``) into ``pass``."""
    lines = [
        "pass" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    ]
    return ast.parse("\n".join(lines))


def _code_indices(notebook) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]


def _parameters_indices(notebook) -> list[int]:
    return [
        i
        for i in _code_indices(notebook)
        if "parameters" in notebook.cells[i].metadata.get("tags", [])
    ]


def _heading_index(notebook, word: str) -> int | None:
    """Index of the first markdown cell with a heading (## or deeper) containing ``word``."""
    heading = re.compile(rf"^#{{2,}}\s+.*\b{word}\b", re.MULTILINE | re.IGNORECASE)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and heading.search(cell.source):
            return index
    return None


def test_there_are_notebooks():
    assert NOTEBOOK_PATHS, f"no notebooks named NN_name.ipynb in {NOTEBOOKS_DIR}"


parametrize_notebooks = pytest.mark.parametrize(
    "path", NOTEBOOK_PATHS, ids=[path.name for path in NOTEBOOK_PATHS]
)


@parametrize_notebooks
def test_opening_cell_has_title_badge_prerequisites_and_runtime(path):
    notebook = _read(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown", "the first cell must be markdown with the H1 title"
    lines = first.source.split("\n")
    assert lines[0].startswith("# ") and lines[0][2:].strip(), "the first line must be '# Title'"
    assert len(lines) > 1 and lines[1] == update_notebooks.badge_line(path.name), (
        "the second line must be the Colab badge for this notebook's own path "
        "(run tools/update_notebooks.py)"
    )
    runtime_lines = [line for line in lines if "Prerequisites" in line]
    assert runtime_lines, "the opening needs a line starting 'Prerequisites: ...'"
    line = runtime_lines[0]
    assert "CPU" in line and "GPU" in line, f"state the runtime on CPU and on a Colab GPU: {line!r}"
    assert RUNTIME.search(line), f"state the runtime as a time, e.g. 'about 5 min': {line!r}"


@parametrize_notebooks
def test_overview_then_setup_then_parameters(path):
    notebook = _read(path)
    code = _code_indices(notebook)
    assert len(code) >= 2, "a notebook needs at least a setup cell and a parameters cell"
    overview = _heading_index(notebook, "Overview")
    assert overview is not None, "add a markdown cell with an '## Overview' heading"
    setup = code[0]
    assert overview < setup, "the Overview comes before the setup cell"
    assert any(
        isinstance(node, ast.Import | ast.ImportFrom)
        for node in _python(notebook.cells[setup].source).body
    ), "the first code cell is the setup cell and must hold the imports"
    parameters = _parameters_indices(notebook)
    assert len(parameters) == 1, (
        f"exactly one code cell must be tagged 'parameters', found {len(parameters)}"
    )
    assert parameters[0] == code[1], "the parameters cell is the code cell right after setup"


@parametrize_notebooks
def test_parameters_are_upper_case_literals(path):
    notebook = _read(path)
    indices = _parameters_indices(notebook)
    assert indices, "no code cell tagged 'parameters'"
    tree = _python(notebook.cells[indices[0]].source)
    assert tree.body, "the parameters cell is empty"
    for node in tree.body:
        where = f"line {node.lineno} of the parameters cell"
        assert isinstance(node, ast.Assign | ast.AnnAssign), f"{where}: only assignments allowed"
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        assert len(targets) == 1 and isinstance(targets[0], ast.Name), (
            f"{where}: assign one name at a time"
        )
        assert UPPER_CASE.match(targets[0].id), f"{where}: {targets[0].id} must be UPPER_CASE"
        assert node.value is not None, f"{where}: give {targets[0].id} a value"
        try:
            ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"{where}: {targets[0].id} must be a literal (papermill overrides it)")


@parametrize_notebooks
def test_imports_only_in_setup_cell(path):
    notebook = _read(path)
    for index in _code_indices(notebook)[1:]:
        for node in ast.walk(_python(notebook.cells[index].source)):
            assert not isinstance(node, ast.Import | ast.ImportFrom), (
                f"cell {index} imports (line {node.lineno}); all imports go in the setup cell"
            )


@parametrize_notebooks
def test_closing_has_summary_exercises_and_navigation_last(path):
    notebook = _read(path)
    last_code = max(_code_indices(notebook), default=-1)
    summary = _heading_index(notebook, "Summary")
    exercises = _heading_index(notebook, "Exercises")
    assert summary is not None and exercises is not None, "add '## Summary' and '## Exercises'"
    assert last_code < summary <= exercises, "Summary, then Exercises, come after the last code"
    bullets = re.findall(r"^[-*] ", notebook.cells[summary].source, re.MULTILINE)
    assert 3 <= len(bullets) <= 5, f"the Summary has {len(bullets)} bullets; use 3 to 5"
    exercise_text = notebook.cells[exercises].source.split("## Exercises", 1)[-1]
    assert re.search(r"^\d+\. ", exercise_text, re.MULTILINE), "number the exercises: '1. ...'"
    last = notebook.cells[-1]
    assert last.cell_type == "markdown", "the last cell must be markdown ending in the navigation"
    last_line = last.source.rstrip().split("\n")[-1]
    assert update_notebooks.CONTENTS_LINK in last_line, (
        "the navigation line must come last (run tools/update_notebooks.py)"
    )


@parametrize_notebooks
def test_no_stored_outputs(path):
    notebook = _read(path)
    for index in _code_indices(notebook):
        cell = notebook.cells[index]
        assert cell.outputs == [], f"cell {index} has stored outputs"
        assert cell.execution_count is None, f"cell {index} has an execution count"
    assert '"output_type"' not in path.read_text(encoding="utf-8")


def _guarded_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if IN_COLAB:`` (or a ``google.colab`` test) blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and COLAB_GUARD.search(ast.unparse(node.test)):
            lines.update(range(node.body[0].lineno, node.body[-1].end_lineno + 1))
    return lines


@parametrize_notebooks
def test_pip_install_only_in_the_colab_block_of_setup(path):
    notebook = _read(path)
    setup = _code_indices(notebook)[0] if _code_indices(notebook) else None
    for index in _code_indices(notebook):
        source = notebook.cells[index].source
        allowed = _guarded_lines(_python(source)) if index == setup else set()
        for number, line in enumerate(source.split("\n"), start=1):
            if PIP_INSTALL.search(line):
                assert number in allowed, (
                    f"cell {index}, line {number} installs packages ({line.strip()!r}); only the "
                    "setup cell may, inside `if IN_COLAB:`"
                )


def test_notebooks_are_up_to_date():
    stale = update_notebooks.update_notebooks(NOTEBOOKS_DIR, check=True)
    assert not stale, (
        f"out of date: {[path.name for path in stale]}; run `python tools/update_notebooks.py`"
    )


def test_update_notebooks_is_idempotent(tmp_path):
    """Running the tool on an outdated copy fixes it, and a second run changes nothing."""
    for index, name in enumerate(("01_first.ipynb", "02_second.ipynb", "03_third.ipynb")):
        notebook = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_markdown_cell(f"# 0{index + 1} · Title {index}\n\nPrerequisites"),
                nbformat.v4.new_code_cell("x = 1", execution_count=3, outputs=[]),
                nbformat.v4.new_markdown_cell("## Summary\n\n- one"),
            ],
            metadata={
                "kernelspec": {"name": "other", "display_name": "Other"},
                "colab": {"provenance": []},
            },
        )
        nbformat.write(notebook, tmp_path / name)
    assert len(update_notebooks.update_notebooks(tmp_path)) == 3
    assert update_notebooks.update_notebooks(tmp_path, check=True) == []
    assert update_notebooks.main(["--check", "--notebooks", str(tmp_path)]) == 0
    middle = nbformat.read(tmp_path / "02_second.ipynb", as_version=4)
    assert middle.cells[0].source.split("\n")[1] == update_notebooks.badge_line("02_second.ipynb")
    assert middle.cells[-1].source.endswith(
        "< [01 · Title 0](01_first.ipynb) | [Contents](../README.md#notebooks) | "
        "[03 · Title 2](03_third.ipynb) >"
    )
    assert middle.cells[1].execution_count is None
    assert middle.metadata == update_notebooks.NOTEBOOK_METADATA
    last = nbformat.read(tmp_path / "03_third.ipynb", as_version=4)
    assert last.cells[-1].source.rstrip().endswith("| [Contents](../README.md#notebooks)")


# Lessons, not lab reports (STYLE.md rules 9 and 10): dated runs, machines and timings live
# in models/README.md and benchmarks/README.md, never in a lesson's text.
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
MACHINE = re.compile(r"\b(?:AMD|EPYC|Intel|Xeon|AVX(?:-?512|2)?|Ryzen|M1|M2)\b")


@parametrize_notebooks
def test_closing_has_a_references_section_after_the_exercises(path):
    notebook = _read(path)
    exercises = _heading_index(notebook, "Exercises")
    references = _heading_index(notebook, "References")
    assert references is not None, "end with a '## References' section (the methods' papers)"
    assert exercises is not None and references >= exercises, "References come after Exercises"
    text = notebook.cells[references].source.split("References", 1)[-1]
    cited = re.findall(r"^[-*] .*\b(?:19|20)\d\d\b", text, re.MULTILINE)
    assert cited, "list each reference as a bullet with its year"


@parametrize_notebooks
def test_markdown_names_no_dates_or_machines(path):
    notebook = _read(path)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for pattern in (DATE, MACHINE):
            found = pattern.findall(cell.source)
            assert not found, (
                f"cell {index} names {found}: move it to models/ or benchmarks/README.md"
            )
