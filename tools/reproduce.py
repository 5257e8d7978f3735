"""Recomputes the shipped records of the full-scale experiments (``make reproduce``).

A notebook ships a record for each result it computes through
``helpers.lab.records.load_or_compute("<name>", ...)``. This tool finds those calls, and
for every notebook with a record that is missing or out of date runs the notebook with
papermill in the default profile with ``ADVLAB_RECOMPUTE=1``: the notebook then computes
each record whose settings or model files changed, writes it to
``results/records/<dataset>/<name>.json``, and loads the others as they are.

A record is up to date when its file exists, its model files' fingerprints equal those of
the files the notebook would load, and every setting named like a notebook parameter
equals that parameter's value in the notebook's ``parameters`` cell. Up-to-date notebooks
are skipped, so an interrupted run resumes where it stopped.

Usage::

    make reproduce                                  # every notebook with records
    .venv/bin/python tools/reproduce.py --only 07   # one notebook
    .venv/bin/python tools/reproduce.py --force     # recompute every record
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pathlib
import re
import sys
from collections.abc import Callable, Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # run_tutorial, update_notebooks
from run_tutorial import (  # noqa: E402
    EXECUTED_DIR,
    execute_with_papermill,
    exit_code,
    run_notebooks,
    select_notebooks,
    summary_table,
)
from update_notebooks import NOTEBOOKS_DIR, notebook_paths  # noqa: E402

from helpers.lab.profile import PROFILE_VARIABLE, current_profile  # noqa: E402
from helpers.lab.recipes import model_file_for_profile  # noqa: E402
from helpers.lab.records import (  # noqa: E402
    RECOMPUTE_VARIABLE,
    RECORDS_DIR_VARIABLE,
    fingerprints,
    record_path,
)

RECORD_CALL = re.compile(r"load_or_compute\(\s*['\"](\w+)['\"]")


def notebook_cells(path: pathlib.Path) -> list[dict]:
    """The cells of a notebook file."""
    return json.loads(path.read_text())["cells"]


def record_names(path: pathlib.Path) -> list[str]:
    """Names of the records a notebook computes through ``load_or_compute``, in order."""
    names = []
    for cell in notebook_cells(path):
        if cell["cell_type"] == "code":
            names += RECORD_CALL.findall("".join(cell["source"]))
    return list(dict.fromkeys(names))


def parameter_values(path: pathlib.Path) -> dict:
    """The literal values assigned in a notebook's ``parameters`` cell (others are left out)."""
    values = {}
    for cell in notebook_cells(path):
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        for node in ast.parse("".join(cell["source"])).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                try:
                    if isinstance(target, ast.Name):
                        values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return values


def stale_reason(path: pathlib.Path, name: str, profile) -> str | None:
    """Why the record ``name`` of a notebook must be recomputed, or ``None`` if up to date."""
    parameters = parameter_values(path)
    dataset = parameters.get("DATASET", "gtsrb")
    file = record_path(name, dataset)
    if not file.exists():
        return f"{dataset}/{name}: no record"
    stored = json.loads(file.read_text())
    current = fingerprints(
        {model: model_file_for_profile(model, profile) for model in stored["model_files"]}
    )
    if stored["model_files"] != current:
        return f"{dataset}/{name}: model files changed"
    changed = [
        key
        for key, value in stored["settings"].items()
        if key in parameters and json.loads(json.dumps(parameters[key])) != value
    ]
    if changed:
        return f"{dataset}/{name}: parameters changed ({', '.join(changed)})"
    return None


def main(
    argv: Sequence[str] | None = None,
    execute: Callable[[pathlib.Path, pathlib.Path], None] = execute_with_papermill,
) -> int:
    """Runs the tool; returns the exit code (1 when a notebook failed, 2 for bad options)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks")
    parser.add_argument("--force", action="store_true", help="recompute up-to-date records too")
    parser.add_argument(
        "--notebooks", type=pathlib.Path, default=NOTEBOOKS_DIR, help="notebook folder"
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=EXECUTED_DIR / "reproduce",
        help="folder for the executed copies",
    )
    arguments = parser.parse_args(argv)
    os.environ.setdefault(PROFILE_VARIABLE, "default")  # records are full-scale results
    os.environ[RECOMPUTE_VARIABLE] = "force" if arguments.force else "1"  # kernels inherit it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    profile = current_profile()
    if profile.name != "default" and not os.environ.get(RECORDS_DIR_VARIABLE):
        print(
            f"error: the shipped records are full-scale results; run in the default profile "
            f"({PROFILE_VARIABLE}=default), or set {RECORDS_DIR_VARIABLE} to another folder.",
            file=sys.stderr,
        )
        return 2
    try:
        paths = select_notebooks(notebook_paths(arguments.notebooks), arguments.only)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    to_run = []
    for path in paths:
        names = record_names(path)
        if not names:
            continue
        reasons = [reason for name in names if (reason := stale_reason(path, name, profile))]
        if reasons or arguments.force:
            print(f"{path.name}: " + ("; ".join(reasons) or "--force"))
            to_run.append(path)
        else:
            print(f"{path.name}: records up to date ({', '.join(names)}), skipped")
    if not to_run:
        print("Every record is up to date.")
        return 0
    print(f"Recomputing in the {profile.name} profile: {', '.join(p.name for p in to_run)}")
    runs = run_notebooks(to_run, arguments.output_dir, execute=execute)
    print("\n" + summary_table(runs))
    return exit_code(runs)


if __name__ == "__main__":
    sys.exit(main())
