"""Code a notebook writes out must stay the code the helpers run.

A code cell whose first line reads ``# Same code as helpers/<file>.py: name, Class.method``
holds copies of those definitions, so that the learner reads (and may edit) them in the
lesson. These tests compare each copy with the helper's source, ignoring docstrings,
comments and formatting, so an edit on either side fails until the other follows. The
layer-by-layer network of notebook 02 is checked by behaviour instead: it must build the
same layers as ``helpers.models.build_cnn`` and compute the same outputs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pathlib
import re
import textwrap

import keras
import numpy as np
import pytest
from keras import layers

from helpers.models import PerImageStandardization, build_cnn

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
MARKER = re.compile(r"^# Same code as helpers/([\w/]+)\.py: (.+)$")
# Every marked copy the course has; a marker that disappears fails too.
EXPECTED = {
    ("02_cnn_training", "training", "learning_rate_schedule"),
    ("02_cnn_training", "training", "compile_model"),
    ("05_adversarial_training", "adversarial_training", "AdversarialTrainer.craft"),
    ("05_adversarial_training", "adversarial_training", "AdversarialTrainer.train_step"),
}


def _cells(notebook: str) -> list[str]:
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def _marked_copies():
    """Yields (notebook, module, qualified name, the cell's source) for every marked name."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for source in _cells(path.stem):
            match = MARKER.match(source.splitlines()[0]) if source else None
            if match:
                module = match.group(1).replace("/", ".")
                for name in match.group(2).split(","):
                    yield path.stem, module, name.strip(), source


def _definition(tree: ast.AST, qualified_name: str):
    """Finds ``function`` or ``Class.method`` in a parsed module or cell (None if absent)."""
    *owners, name = qualified_name.split(".")
    scope = tree.body
    for owner in owners:
        classes = [node for node in scope if isinstance(node, ast.ClassDef)]
        # In a notebook the method may sit on a subclass of the helper's class.
        found = [node for node in classes if node.name == owner] or classes
        if not found:
            return None
        scope = found[0].body
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _normalised(function: ast.FunctionDef) -> str:
    """The definition's AST without its docstring, type annotations or decorators."""
    function = ast.parse(ast.unparse(function)).body[0]
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        function.body = body[1:] or [ast.Pass()]
    function.returns, function.decorator_list = None, []
    for argument in ast.walk(function.args):
        if isinstance(argument, ast.arg):
            argument.annotation = None
    return ast.dump(function)


def differences(module: str, qualified_name: str, cell_source: str) -> str | None:
    """Returns why a cell's copy differs from the helper's definition, or None if equal."""
    helper = importlib.import_module(f"helpers.{module}")
    target = helper
    for part in qualified_name.split("."):
        target = getattr(target, part)
    helper_tree = ast.parse(textwrap.dedent(inspect.getsource(target)))
    copy = _definition(ast.parse(cell_source), qualified_name)
    if copy is None:
        return f"the cell does not define {qualified_name}"
    if _normalised(helper_tree.body[0]) != _normalised(copy):
        return f"{qualified_name} in the cell differs from helpers/{module}.py"
    return None


def test_every_expected_copy_is_marked():
    found = {(notebook, module, name) for notebook, module, name, _ in _marked_copies()}
    assert found == EXPECTED


@pytest.mark.parametrize(
    ("notebook", "module", "name", "source"),
    list(_marked_copies()),
    ids=lambda value: value if isinstance(value, str) and "\n" not in value else "",
)
def test_a_notebook_copy_matches_its_helper(notebook, module, name, source):
    assert differences(module, name, source) is None


def test_an_edited_copy_is_reported():
    _, module, name, source = next(
        copy for copy in _marked_copies() if copy[2] == "AdversarialTrainer.train_step"
    )
    edited = source.replace("1 - self.clean_weight", "1 - 2 * self.clean_weight")
    assert edited != source
    assert "differs" in differences(module, name, edited)
    assert "does not define" in differences(module, name, "x = 1\n")


def _study_cnn():
    """Runs notebook 02's architecture cell up to its definition of ``study_cnn``."""
    source = next(cell for cell in _cells("02_cnn_training") if "def study_cnn(" in cell)
    definition = source[: source.index("\nmodel = study_cnn(")]
    namespace = {
        "keras": keras,
        "layers": layers,
        "PerImageStandardization": PerImageStandardization,
    }
    exec(compile(definition, "02_cnn_training.ipynb", "exec"), namespace)  # noqa: S102
    return namespace["study_cnn"]


@pytest.mark.parametrize(("classes", "width", "dropout"), [(43, 32, 0.3), (10, 8, 0.1)])
def test_the_notebooks_layer_by_layer_network_is_build_cnn(classes, width, dropout):
    written_out = _study_cnn()(classes, width=width, dropout=dropout)
    helper = build_cnn(classes, width=width, dropout=dropout)
    assert [type(layer) for layer in written_out.layers] == [type(layer) for layer in helper.layers]
    for mine, theirs in zip(written_out.layers, helper.layers, strict=True):
        assert mine.get_config() == theirs.get_config(), mine.name
    written_out.set_weights(helper.get_weights())
    images = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(written_out(images), helper(images), rtol=1e-6, atol=1e-6)


def test_a_different_network_is_told_apart():
    written_out = _study_cnn()(43, width=32)
    assert written_out.count_params() != build_cnn(43, width=16).count_params()
