"""Writes the Colab badge and navigation line into every notebook, and strips outputs.

For every ``notebooks/NN_*.ipynb``, in order:

- the first markdown cell gets the Colab badge as its second line (after the H1 title);
- the last markdown cell ends with the navigation line
  ``< [previous](...) | [Contents](../README.md#notebooks) | [next](...) >``, the titles
  taken from each notebook's H1 (the first notebook has no previous link, the last none
  to a next one);
- outputs and execution counts are removed, cell metadata is reduced to ``tags`` and the
  notebook metadata to the kernel name and language.

Running it twice changes nothing. Usage::

    python tools/update_notebooks.py                          # rewrite every notebook
    python tools/update_notebooks.py notebooks/01_data.ipynb  # rewrite only this one
    python tools/update_notebooks.py --check                  # exit 1, list those out of date

Navigation always takes every numbered notebook into account, also when only some are
rewritten.
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import re
import sys
from collections.abc import Sequence

import nbformat

REPOSITORY = "adversarial-robustness-lab/adversarial-robustness-lab"
NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_PATTERN = re.compile(r"^\d{2}_\w+\.ipynb$")
CONTENTS_LINK = "[Contents](../README.md#notebooks)"
BADGE_MARKER = "colab-badge.svg"
NAVIGATION_PLACEHOLDER = re.compile(r"^< .*>$")  # "< ... >", never an HTML tag
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
KEPT_CELL_METADATA = ("tags",)


def notebook_paths(notebooks_dir: pathlib.Path = NOTEBOOKS_DIR) -> list[pathlib.Path]:
    """Returns the numbered notebooks (``NN_name.ipynb``) in order."""
    return sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def badge_line(notebook_name: str) -> str:
    """Returns the Colab badge markdown for ``notebooks/<notebook_name>``."""
    url = (
        f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{notebook_name}"
    )
    return f"[![Open In Colab](https://colab.research.google.com/assets/{BADGE_MARKER})]({url})"


def navigation_line(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    """Returns the navigation line.

    Args:
        previous: ``(title, file name)`` of the previous notebook, or ``None``.
        following: ``(title, file name)`` of the next notebook, or ``None``.

    Returns:
        For example ``< [01 · Data](01_data.ipynb) | [Contents](...) | [03 · ...](...) >``.
    """
    parts = [CONTENTS_LINK]
    if previous:
        parts.insert(0, f"< [{previous[0]}]({previous[1]})")
    if following:
        parts.append(f"[{following[0]}]({following[1]}) >")
    return " | ".join(parts)


def is_navigation_line(line: str) -> bool:
    """Tells whether a markdown line is a navigation line (or a ``< ... >`` placeholder)."""
    line = line.strip()
    return CONTENTS_LINK in line or bool(NAVIGATION_PLACEHOLDER.match(line))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def notebook_title(notebook, path: pathlib.Path) -> str:
    """Returns the H1 title of a notebook (the first line of its first markdown cell).

    Raises:
        ValueError: If the first markdown cell does not start with ``# ``.
    """
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            first_line = _source(cell).lstrip("\n").split("\n", 1)[0]
            if first_line.startswith("# "):
                return first_line[2:].strip()
            break
    raise ValueError(f"{path}: the first markdown cell must start with an H1 title ('# Title').")


def _markdown_indices(notebook) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"]


def _put_badge(cell, notebook_name: str) -> None:
    lines = [line for line in _source(cell).lstrip("\n").split("\n") if BADGE_MARKER not in line]
    lines.insert(1, badge_line(notebook_name))
    cell.source = "\n".join(lines)


def _put_navigation(cell, line: str) -> None:
    lines = [x for x in _source(cell).rstrip().split("\n") if not is_navigation_line(x)]
    text = "\n".join(lines).rstrip()
    cell.source = f"{text}\n\n{line}" if text else line


def _clean_cell(cell) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    kept = {key: cell.metadata[key] for key in KEPT_CELL_METADATA if cell.metadata.get(key)}
    cell.metadata = nbformat.NotebookNode(kept)


def updated_notebook(
    notebook,
    path: pathlib.Path,
    previous: tuple[str, str] | None,
    following: tuple[str, str] | None,
):
    """Returns a copy of ``notebook`` with badge, navigation and clean outputs/metadata.

    Args:
        notebook: A notebook read with ``nbformat.read(..., as_version=4)``.
        path: Its path (for the badge and error messages).
        previous: ``(title, file name)`` of the previous notebook, or ``None``.
        following: ``(title, file name)`` of the next notebook, or ``None``.

    Returns:
        The updated copy.

    Raises:
        ValueError: If the notebook has no markdown cell or no H1 title.
    """
    notebook = copy.deepcopy(notebook)
    notebook_title(notebook, path)  # raises when the title is missing
    markdown = _markdown_indices(notebook)
    _put_badge(notebook.cells[markdown[0]], path.name)
    _put_navigation(notebook.cells[markdown[-1]], navigation_line(previous, following))
    for cell in notebook.cells:
        _clean_cell(cell)
    notebook.metadata = nbformat.NotebookNode(copy.deepcopy(NOTEBOOK_METADATA))
    notebook.nbformat, notebook.nbformat_minor = 4, max(5, notebook.get("nbformat_minor", 5))
    for index, cell in enumerate(notebook.cells):
        cell.setdefault("id", f"cell-{index}")  # nbformat 4.5 requires cell ids
    return notebook


def _text(notebook) -> str:
    text = nbformat.writes(notebook, version=4, indent=1)
    return text if text.endswith("\n") else text + "\n"


def update_notebooks(
    notebooks_dir: pathlib.Path = NOTEBOOKS_DIR,
    *,
    check: bool = False,
    only: Sequence[pathlib.Path] | None = None,
) -> list[pathlib.Path]:
    """Updates every numbered notebook, or only reports which ones are out of date.

    Args:
        notebooks_dir: The folder holding ``NN_*.ipynb``.
        check: Report only; write nothing.
        only: Update (or check) only these notebooks; ``None`` for all. Navigation
            still uses every notebook in ``notebooks_dir``.

    Returns:
        The notebooks that were (or, with ``check``, would be) changed.

    Raises:
        ValueError: If a notebook has no H1 title, or ``only`` names a file that is not
            a numbered notebook of ``notebooks_dir``.
    """
    paths = notebook_paths(notebooks_dir)
    selected = {path.resolve() for path in paths} if only is None else {p.resolve() for p in only}
    unknown = selected - {path.resolve() for path in paths}
    if unknown:
        raise ValueError(
            f"not a numbered notebook (NN_name.ipynb) of {notebooks_dir}: {sorted(map(str, unknown))}"
        )
    notebooks = [nbformat.read(path, as_version=4) for path in paths]
    titles = [
        notebook_title(notebook, path) for notebook, path in zip(notebooks, paths, strict=True)
    ]
    changed = []
    for index, (path, notebook) in enumerate(zip(paths, notebooks, strict=True)):
        previous = (titles[index - 1], paths[index - 1].name) if index > 0 else None
        if path.resolve() not in selected:
            continue
        following = (titles[index + 1], paths[index + 1].name) if index + 1 < len(paths) else None
        text = _text(updated_notebook(notebook, path, previous, following))
        if text != path.read_text(encoding="utf-8"):
            changed.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the script; returns the exit code (1 when ``--check`` finds changes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "paths", nargs="*", type=pathlib.Path, help="only these notebooks (default: all)"
    )
    parser.add_argument(
        "--check", action="store_true", help="list out-of-date notebooks, write nothing"
    )
    parser.add_argument(
        "--notebooks", type=pathlib.Path, default=NOTEBOOKS_DIR, help="notebook folder"
    )
    arguments = parser.parse_args(argv)
    try:
        changed = update_notebooks(
            arguments.notebooks, check=arguments.check, only=arguments.paths or None
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"{'out of date' if arguments.check else 'updated'}: {path}")
    if arguments.check and changed:
        print("Run `python tools/update_notebooks.py` to update them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
