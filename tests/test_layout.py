"""The folder reads like the course: lesson files in order, plumbing in sub-packages."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

HELPERS = pathlib.Path(__file__).resolve().parent.parent / "helpers"
# The first notebook that teaches each lesson file's idea.
LESSONS = {
    "data": 1,
    "models": 2,
    "training": 2,
    "evaluation": 3,  # accuracy appears in 02, robust accuracy (built on attacks) in 03
    "attacks": 3,
    "adversarial_training": 5,
    "defenses": 6,
    "apgd": 7,
    "square": 7,
    "worst_case": 7,
    "sanity_checks": 7,
    "calibration": 8,
    "detection": 8,
}
PLUMBING = ("archives", "plots", "lab")


def _imported_helpers(path: pathlib.Path) -> set[str]:
    """Names of the ``helpers`` modules and packages a file imports, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            parts = node.module.split(".")
            if len(parts) == 1:
                names.update(alias.name for alias in node.names)
            else:
                names.add(parts[1])
        elif isinstance(node, ast.Import):
            names.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("helpers.")
            )
    return names


def test_top_level_holds_only_lesson_files_and_plumbing_packages():
    files = {path.stem for path in HELPERS.glob("*.py")} - {"__init__"}
    packages = {path.name for path in HELPERS.iterdir() if (path / "__init__.py").exists()}
    assert files == set(LESSONS), "a new top-level file must be a lesson (add it to LESSONS)"
    assert packages == set(PLUMBING)


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_a_lesson_imports_only_earlier_lessons_and_plumbing(lesson):
    imported = _imported_helpers(HELPERS / f"{lesson}.py") - set(PLUMBING)
    later = {name for name in imported if LESSONS[name] > LESSONS[lesson]}
    assert not later, f"helpers/{lesson}.py (notebook {LESSONS[lesson]}) imports {later}"


def test_the_index_in_helpers_init_names_every_lesson_file():
    index = (HELPERS / "__init__.py").read_text()
    listed = set(re.findall(r"^(\w+)(?:\.py)?\s{2,}", index, flags=re.MULTILINE)) - {"file"}
    assert listed == set(LESSONS)


def test_the_import_check_itself_can_fail(tmp_path):
    lesson = tmp_path / "training.py"
    lesson.write_text("from helpers.adversarial_training import AdversarialTrainer\n")
    assert _imported_helpers(lesson) == {"adversarial_training"}
    assert LESSONS["adversarial_training"] > LESSONS["training"]
