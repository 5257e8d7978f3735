"""Runs every notebook in order with papermill: the lab's headless tutorial (``make tutorial``).

The notebooks are found as ``tools/update_notebooks.py`` finds them (``notebooks/NN_*.ipynb``,
in numeric order) and run one after the other, each in a fresh kernel whose working
directory is ``notebooks/``, as in JupyterLab. The executed copies, with every output, go
to ``executed/`` (ignored by git); what the notebooks measure goes where
``helpers.lab.outputs`` puts it (``results/`` and ``docs/figures/`` in the default profile,
``executed/smoke/`` in the smoke profile).

A failing notebook does not stop the run (the notebooks do not depend on each other's
outputs: each loads or trains what it needs); the failing cell is named, the rest still run,
and the exit code is 1. ``--fail-fast`` stops at the first failure instead. The summary at
the end lists every notebook with its status and minutes.

Usage (from the repository root, with the lab's environment)::

    python tools/run_tutorial.py                    # every notebook, ADVLAB_PROFILE or default
    python tools/run_tutorial.py --only 03 04       # a subset, still in numeric order
    python tools/run_tutorial.py --profile smoke    # a quick check; its numbers mean nothing
    python tools/run_tutorial.py --output-dir /tmp/executed
    python tools/run_tutorial.py --dataset cifar10  # every notebook with DATASET = "cifar10"
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # update_notebooks
from update_notebooks import NOTEBOOKS_DIR, notebook_paths  # noqa: E402

from helpers.data import DATASET_NAMES  # noqa: E402
from helpers.lab.outputs import ROOT, outputs_root  # noqa: E402
from helpers.lab.profile import PROFILE_VARIABLE, PROFILES, current_profile  # noqa: E402

EXECUTED_DIR = ROOT / "executed"
OK, FAILED, NOT_RUN, INTERRUPTED = "ok", "FAILED", "not run", "interrupted"


@dataclasses.dataclass
class NotebookRun:
    """What happened to one notebook.

    Attributes:
        path: The source notebook.
        status: ``"ok"``, ``"FAILED"``, ``"not run"`` or ``"interrupted"``.
        seconds: Wall-clock time of the run, or ``None`` when it did not start.
        failure: Which cell failed and with what error (one line), or ``None``.
    """

    path: pathlib.Path
    status: str = NOT_RUN
    seconds: float | None = None
    failure: str | None = None


def select_notebooks(
    paths: Sequence[pathlib.Path], only: Sequence[str] | None = None
) -> list[pathlib.Path]:
    """Picks the notebooks to run, always in numeric order.

    Args:
        paths: The numbered notebooks, as returned by ``notebook_paths``.
        only: Numbers (``"03"`` or ``"3"``) or names (``"03_fgsm"``, ``"03_fgsm.ipynb"``) of
            the notebooks to run; ``None`` or empty for all of them.

    Returns:
        The selected notebooks, sorted by number.

    Raises:
        ValueError: If an entry of ``only`` matches no notebook.
    """
    paths = sorted(paths, key=lambda path: path.name)
    if not only:
        return paths
    chosen = set()
    for wanted in only:
        key = wanted.strip().removesuffix(".ipynb")
        matches = [
            path
            for path in paths
            if path.stem == key or (key.isdigit() and int(path.name[:2]) == int(key))
        ]
        if not matches:
            available = ", ".join(path.name[:2] for path in paths) or "none"
            raise ValueError(f"no notebook matches {wanted!r}; the notebooks are {available}.")
        chosen.update(matches)
    return [path for path in paths if path in chosen]


def describe_failure(error: BaseException) -> str:
    """Returns one line saying which cell failed and why.

    Args:
        error: The exception papermill raised (or any other).

    Returns:
        For a failing cell, ``"cell 12 (In [9]): ValueError: ..."``; otherwise the
        exception's type and message.
    """
    message = str(getattr(error, "evalue", None) or error).strip().split("\n")[0]
    if hasattr(error, "cell_index"):
        return f"cell {error.cell_index} (In [{error.exec_count}]): {error.ename}: {message}"
    return f"{type(error).__name__}: {message}"


def execute_with_papermill(
    path: pathlib.Path,
    output: pathlib.Path,
    *,
    log_output: bool = False,
    parameters: dict | None = None,
) -> None:
    """Executes one notebook with papermill, in a fresh kernel, from its own folder.

    Args:
        path: The notebook to run.
        output: Where to write the executed copy (also written when a cell fails).
        log_output: Also print the cells' outputs as they come.
        parameters: Values for the notebook's ``parameters`` cell, by name (papermill
            injects them in a cell after it).

    Raises:
        papermill.PapermillExecutionError: If a cell raises.
    """
    import papermill

    papermill.execute_notebook(
        str(path),
        str(output),
        kernel_name="python3",
        parameters=parameters or {},
        cwd=str(path.parent),
        progress_bar=True,
        log_output=log_output,
    )


def _shown(path: pathlib.Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def run_notebooks(
    paths: Sequence[pathlib.Path],
    output_dir: pathlib.Path,
    *,
    execute: Callable[[pathlib.Path, pathlib.Path], None] = execute_with_papermill,
    fail_fast: bool = False,
    stream: TextIO = sys.stdout,
    clock: Callable[[], float] = time.perf_counter,
) -> list[NotebookRun]:
    """Runs the notebooks one after the other and records what happened to each.

    Args:
        paths: The notebooks, in the order to run them.
        output_dir: Folder for the executed copies (created if missing).
        execute: Function ``(notebook, executed_copy)`` that runs one notebook and raises
            when a cell fails (papermill by default; tests pass a stand-in).
        fail_fast: Stop at the first failure; the rest are reported as not run.
        stream: Where progress lines go.
        clock: Seconds counter (tests pass a fake one).

    Returns:
        One :class:`NotebookRun` per notebook, in order. A Ctrl-C marks the running notebook
        as interrupted and the rest as not run, and returns.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = [NotebookRun(path) for path in paths]
    for number, run in enumerate(runs, start=1):
        output = output_dir / run.path.name
        print(f"\n[{number}/{len(runs)}] {run.path.name}", file=stream, flush=True)
        started = clock()
        try:
            execute(run.path, output)
        except KeyboardInterrupt:
            run.status, run.seconds = INTERRUPTED, clock() - started
            print(f"      interrupted after {run.seconds / 60:.1f} min", file=stream, flush=True)
            break
        except Exception as error:  # any failure is reported, then the next notebook runs
            run.status, run.seconds = FAILED, clock() - started
            run.failure = describe_failure(error)
            print(
                f"      FAILED after {run.seconds / 60:.1f} min at {run.failure}\n"
                f"      the executed copy shows the traceback: {_shown(output)}",
                file=stream,
                flush=True,
            )
            if fail_fast:
                break
        else:
            run.status, run.seconds = OK, clock() - started
            print(f"      ok, {run.seconds / 60:.1f} min", file=stream, flush=True)
    return runs


def summary_table(runs: Sequence[NotebookRun]) -> str:
    """Formats the end-of-run summary: one row per notebook, a total, then the failures.

    Args:
        runs: The results of :func:`run_notebooks`.

    Returns:
        A plain-text table, for example::

            notebook                  status   minutes
            ------------------------  -------  -------
            01_data.ipynb             ok           0.9
            02_cnn_training.ipynb     FAILED       0.2
            total                                  1.1

            02_cnn_training.ipynb failed at cell 6 (In [4]): ValueError: ...
    """
    rows = [
        (run.path.name, run.status, "-" if run.seconds is None else f"{run.seconds / 60:.1f}")
        for run in runs
    ]
    total = sum(run.seconds or 0.0 for run in runs)
    rows.append(("total", "", f"{total / 60:.1f}"))
    header = ("notebook", "status", "minutes")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]

    def line(row):
        return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}".rstrip()

    lines = [line(header), line(tuple("-" * width for width in widths))]
    lines += [line(row) for row in rows]
    failures = [f"{run.path.name} failed at {run.failure}" for run in runs if run.failure]
    if failures:
        lines += ["", *failures]
    return "\n".join(lines)


def exit_code(runs: Sequence[NotebookRun]) -> int:
    """Returns 0 when every notebook ran, 130 after a Ctrl-C, 1 after a failure."""
    statuses = {run.status for run in runs}
    if INTERRUPTED in statuses:
        return 130
    return 0 if statuses <= {OK} else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the script; returns the exit code (1 when a notebook failed, 2 for bad options)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only", nargs="+", metavar="NN", help="run only these notebooks (numbers or names)"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help=f"run profile (default: ${PROFILE_VARIABLE}, else default)",
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        help="folder for the executed copies (default: executed/, executed/<profile>/ "
        "for a profile other than default)",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        help="set every notebook's DATASET parameter (default: the notebooks' own, gtsrb); "
        "executed copies then go to a sub-folder named after it",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    parser.add_argument(
        "--log-output", action="store_true", help="also print every cell's output as it comes"
    )
    parser.add_argument(
        "--notebooks", type=pathlib.Path, default=NOTEBOOKS_DIR, help="notebook folder"
    )
    arguments = parser.parse_args(argv)
    if arguments.profile:
        os.environ[PROFILE_VARIABLE] = arguments.profile  # the kernels inherit it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer TensorFlow start-up lines
    try:
        profile = current_profile()
        paths = select_notebooks(notebook_paths(arguments.notebooks), arguments.only)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not paths:
        print(f"error: no notebooks named NN_name.ipynb in {arguments.notebooks}", file=sys.stderr)
        return 2
    output_dir = arguments.output_dir or (
        EXECUTED_DIR if profile.name == "default" else EXECUTED_DIR / profile.name
    )
    parameters = {}
    if arguments.dataset:
        parameters["DATASET"] = arguments.dataset
        if not arguments.output_dir:
            output_dir = output_dir / arguments.dataset
    if arguments.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    print(
        f"Running {len(paths)} notebook(s) in the {profile.name} profile "
        f"({PROFILE_VARIABLE}={profile.name})"
        + (f" with DATASET={arguments.dataset!r}" if arguments.dataset else "")
        + f"; executed copies go to {_shown(output_dir)}/"
    )
    if profile.name != "default":
        print("The numbers of this profile are not the lab's results.")
    runs = run_notebooks(
        paths,
        output_dir,
        execute=lambda path, output: execute_with_papermill(
            path, output, log_output=arguments.log_output, parameters=parameters
        ),
        fail_fast=arguments.fail_fast,
    )
    print("\n" + summary_table(runs))
    where = outputs_root(profile)
    print(
        f"\nExecuted notebooks: {_shown(output_dir)}/"
        f"\nResults and README figures: {_shown(where / 'results')}/, "
        f"{_shown(where / 'docs' / 'figures')}/"
    )
    return exit_code(runs)


if __name__ == "__main__":
    sys.exit(main())
