"""Writes the README's results table from ``results/gtsrb.json`` (run by ``make tutorial``).

Notebook 07 records the robustness numbers with
``helpers.lab.outputs.record_results("gtsrb", "robustness", {...}, profile)`` and notebook 08
adds an ``"uncertainty"`` section the same way. This script turns them into the markdown
between ``<!-- results:start -->`` and ``<!-- results:end -->`` in ``README.md``; the rest
of the README is left as it is. The file looks like this (``profile`` and ``measured_on``
and ``model_files``, the fingerprints of the shipped models, are added to every section by
``record_results``)::

    {
      "robustness": {
        "samples": 12630,                        # test images evaluated
        "attack": "PGD-20, 3 restarts",          # how robust accuracy was measured
        "epsilons": ["4/255", "8/255", "16/255"],  # L-infinity budgets, [0, 1] pixel scale
        "models": {
          "gtsrb_standard": {"label": "standard training", "clean": 0.9895,
                             "robust": {"4/255": 0.31, "8/255": 0.0415, "16/255": 0.0}},
          ...
        },
        "profile": "default", "measured_on": "2025-01-31",
        "model_files": {"gtsrb_robust": "3d3077d0bf5ae5ae", "gtsrb_standard": "a4edadaf6313bd6c"}
      },
      "uncertainty": {... numbers, free-form, shown as a second small table ...}
    }

Accuracies are fractions in [0, 1]. Until notebook 07 has written the file, the README
keeps its hand-written interim table and this script says so. A section whose
``model_files`` differ from the model files now in ``models/`` was measured with models
that have since been replaced: its table gets an "Out of date" line naming them and the
notebook to rerun.

Usage (from the repository root)::

    python tools/render_results.py           # rewrite the table in README.md
    python tools/render_results.py --check   # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import json
import numbers
import pathlib
import sys
from collections.abc import Mapping, Sequence

from helpers.lab.outputs import model_file_digests

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_PATH = ROOT / "results" / "gtsrb.json"
README_PATH = ROOT / "README.md"
START_MARKER = "<!-- results:start -->"  # GTSRB's table; another data set's has its own
END_MARKER = "<!-- results:end -->"
DATASET_NAMES = {"gtsrb": "GTSRB", "cifar10": "CIFAR-10"}
# added by helpers.lab.outputs.record_results to every section
RECORDED_FIELDS = ("profile", "measured_on", "model_files")
SECTION_NOTEBOOKS = {"robustness": "07", "uncertainty": "08"}  # the notebook that writes each


def _accuracy(value, where: str) -> str:
    """Formats an accuracy in [0, 1] as a percentage with two decimals."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{where} must be an accuracy between 0 and 1, got {value!r}.")
    return f"{value:.2%}"


def _measured(section: dict) -> str:
    """Says when and in which profile a section was measured."""
    text = f"measured on {section.get('measured_on', 'an unknown date')}"
    profile = section.get("profile", "default")
    if profile != "default":
        text += f" in the {profile} profile (not the lab's results)"
    return text


def robustness_table(section: dict, dataset: str = "gtsrb") -> str:
    """Renders the robustness section: one row per model, a column per epsilon.

    Args:
        section: The ``"robustness"`` section (schema in the module docstring).
        dataset: The dataset's file name, for the caption.

    Returns:
        A caption and a markdown table.

    Raises:
        ValueError: If a field is missing or an accuracy is not in [0, 1].
    """
    try:
        samples, attack = int(section["samples"]), str(section["attack"])
        epsilons, models = [str(e) for e in section["epsilons"]], section["models"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"the robustness section needs samples, attack, epsilons and models ({error!r})."
        ) from error
    if not models:
        raise ValueError("the robustness section lists no models.")
    name = DATASET_NAMES.get(dataset, dataset)
    lines = [
        f"Accuracy on {samples:,} {name} test images, clean and under {attack} at each "
        "L-infinity epsilon (on the [0, 1] pixel scale), every attack computed on the model "
        f"itself; {_measured(section)} by `make tutorial` (notebook 07):",
        "",
        "| model | clean | " + " | ".join(epsilons) + " |",
        "| --- | ---: |" + " ---: |" * len(epsilons),
    ]
    for model_name, model in models.items():
        where = f"models.{model_name}"
        robust = model.get("robust", {})
        cells = [_accuracy(model.get("clean"), f"{where}.clean")]
        cells += [
            _accuracy(robust[e], f"{where}.robust[{e!r}]") if e in robust else "–" for e in epsilons
        ]
        label = model.get("label") or model_name
        lines.append(f"| {label} (`{model_name}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _scalars(values: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Flattens nested numbers and strings into (name, text) pairs; lists are skipped."""
    pairs = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += _scalars(value, f"{name} / ")
        elif isinstance(value, bool | str):
            pairs.append((name, str(value)))
        elif isinstance(value, numbers.Integral):
            pairs.append((name, f"{value:,}"))
        elif isinstance(value, numbers.Real):
            pairs.append((name, f"{value:.4g}"))
    return pairs


UNCERTAINTY_LABELS = {  # readable names for notebook 08's measures; others are shown as named
    "ece_clean": "ECE, clean test images",
    "temperature": "temperature fitted on validation",
    "ece_clean_after_temperature": "ECE, clean, after temperature scaling",
    "ece_pgd": "ECE under the attack",
    "catch_rate_pgd_until_fooled": "detector catches: PGD stopping at the first mistake",
    "catch_rate_pgd": "detector catches: PGD, all steps",
    "catch_rate_adaptive": "detector catches: adaptive high-confidence attack",
}


def _number(value) -> str:
    """Formats a recorded number: integers with separators, others with 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    return f"{value:,}" if isinstance(value, numbers.Integral) else f"{value:.4g}"


def uncertainty_table(section: dict) -> str:
    """Renders the uncertainty section: one row per measure, one column per model.

    A section without a ``"models"`` mapping is shown as a two-column name/value table.

    Args:
        section: The ``"uncertainty"`` section: nested dicts of numbers and strings.

    Returns:
        A caption and a markdown table (empty when the section holds no numbers).
    """
    values = {key: value for key, value in section.items() if key not in RECORDED_FIELDS}
    models = values.pop("models", None)
    settings = ", ".join(f"{name} {text}" for name, text in _scalars(values))
    caption = (
        f"Uncertainty (notebook 08; {settings}), {_measured(section)}:"
        if settings
        else f"Uncertainty (notebook 08), {_measured(section)}:"
    )
    if (
        isinstance(models, dict)
        and models
        and all(isinstance(row, dict) for row in models.values())
    ):
        measures = list(dict.fromkeys(key for row in models.values() for key in row))
        lines = [caption, "", "| measure | " + " | ".join(f"`{name}`" for name in models) + " |"]
        lines.append("| --- |" + " ---: |" * len(models))
        for measure in measures:
            cells = [_number(row[measure]) if measure in row else "" for row in models.values()]
            lines.append(
                f"| {UNCERTAINTY_LABELS.get(measure, measure)} | " + " | ".join(cells) + " |"
            )
        return "\n".join(lines)
    pairs = _scalars(values if models is None else {**values, "models": models})
    if not pairs:
        return ""
    lines = [
        f"Uncertainty (notebook 08), {_measured(section)}:",
        "",
        "| measure | value |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {text} |" for name, text in pairs]
    return "\n".join(lines)


def changed_models(section: dict, current_model_files: Mapping[str, str]) -> list[str]:
    """Names the models a section was measured with whose files have changed since.

    Args:
        section: A recorded section; its ``model_files`` maps model names to fingerprints.
        current_model_files: The fingerprints of the model files now shipped
            (``helpers.lab.outputs.model_file_digests()``).

    Returns:
        Sorted names of the models whose file is now different or gone; empty when the
        section records no fingerprints (measured before they were recorded: unknown).
    """
    recorded = section.get("model_files")
    if not isinstance(recorded, dict):
        return []
    return sorted(
        name for name, digest in recorded.items() if current_model_files.get(name) != digest
    )


def staleness_note(section_name: str, section: dict, current_model_files: Mapping[str, str]) -> str:
    """Warns, above a table, that it was measured with models that have been replaced.

    Args:
        section_name: ``"robustness"`` or ``"uncertainty"``.
        section: The recorded section.
        current_model_files: The fingerprints of the model files now shipped.

    Returns:
        A markdown line, or ``""`` when the section's models are the shipped ones.
    """
    changed = changed_models(section, current_model_files)
    if not changed:
        return ""
    notebook = SECTION_NOTEBOOKS.get(section_name)
    rerun = (
        f'rerun notebook {notebook} (`make tutorial TUTORIAL_ARGS="--only {notebook}"`)'
        if notebook
        else "rerun the notebook that writes it"
    )
    names = ", ".join(f"`{name}`" for name in changed)
    return (
        f"**Out of date:** the table below was measured with earlier files of {names}, "
        f"replaced since; {rerun} to measure the shipped models."
    )


def markers(dataset: str) -> tuple[str, str]:
    """Returns the README markers around a data set's results (GTSRB keeps the plain ones)."""
    if dataset == "gtsrb":
        return START_MARKER, END_MARKER
    return f"<!-- results:{dataset}:start -->", f"<!-- results:{dataset}:end -->"


def _own_model_files(section: dict, dataset: str) -> dict:
    """The section with only the fingerprints of its own data set's models.

    Every section records all shipped files; a CIFAR-10 table is not out of date because a
    GTSRB model was replaced.
    """
    recorded = section.get("model_files")
    if not isinstance(recorded, dict):
        return section
    own = {name: digest for name, digest in recorded.items() if name.startswith(f"{dataset}_")}
    return {**section, "model_files": own}


def render(
    results: dict,
    dataset: str = "gtsrb",
    current_model_files: Mapping[str, str] | None = None,
) -> str:
    """Renders everything that goes between the README's markers.

    Args:
        results: The parsed results file.
        dataset: The dataset's file name (``"gtsrb"``).
        current_model_files: Fingerprints of the shipped model files (default: those in
            ``models/`` now), to flag tables measured with other models.

    Returns:
        The markdown, without the markers.

    Raises:
        ValueError: If the file has no robustness section or it is malformed.
    """
    if "robustness" not in results:
        raise ValueError("the results file has no 'robustness' section (notebook 07 writes it).")
    if current_model_files is None:
        current_model_files = model_file_digests()
    parts = [
        f"<!-- Written by tools/render_results.py from results/{dataset}.json: "
        "rerun it instead of editing this table. -->",
        staleness_note(
            "robustness", _own_model_files(results["robustness"], dataset), current_model_files
        ),
        robustness_table(results["robustness"], dataset),
    ]
    if isinstance(results.get("uncertainty"), dict):
        uncertainty = _own_model_files(results["uncertainty"], dataset)
        parts.append(staleness_note("uncertainty", uncertainty, current_model_files))
        parts.append(uncertainty_table(results["uncertainty"]))
    return "\n\n".join(part for part in parts if part)


def replace_block(text: str, block: str, dataset: str = "gtsrb") -> str:
    """Puts ``block`` between a data set's results markers in a README.

    A data set other than GTSRB whose markers are missing gets its own section, with a
    heading, right after GTSRB's table: the first ``DATASET=cifar10 make tutorial`` adds it.

    Args:
        text: The README's text.
        block: The new content (without markers).
        dataset: The data set the block belongs to.

    Returns:
        The README's new text.

    Raises:
        ValueError: If the markers are missing (GTSRB's), repeated or in the wrong order.
    """
    start, end = markers(dataset)
    if dataset != "gtsrb" and start not in text and end not in text:
        if text.count(END_MARKER) != 1:
            raise ValueError(f"the README needs exactly one {END_MARKER} to add {dataset}'s table.")
        heading = f"\n\n### {DATASET_NAMES.get(dataset, dataset)}\n\n{start}\n{end}"
        text = text.replace(END_MARKER, END_MARKER + heading)
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"the README needs exactly one {start} and one {end}.")
    before, rest = text.split(start)
    if end not in rest:
        raise ValueError(f"{end} must come after {start}.")
    after = rest.split(end)[1]
    return f"{before}{start}\n{block.strip()}\n{end}{after}"


def _shown(path: pathlib.Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the script; returns 1 when ``--check`` finds the README out of date, 2 on errors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASET_NAMES),
        default="gtsrb",
        help="whose results to render: results/<dataset>.json (default: gtsrb)",
    )
    parser.add_argument(
        "--results", type=pathlib.Path, help="the results file (default: results/<dataset>.json)"
    )
    parser.add_argument("--readme", type=pathlib.Path, default=README_PATH)
    arguments = parser.parse_args(argv)
    if arguments.results is None:
        arguments.results = RESULTS_PATH.with_name(f"{arguments.dataset}.json")
    if not arguments.results.exists():
        print(
            f"{_shown(arguments.results)} does not exist yet (notebook 07 writes it in the default "
            f"profile): {arguments.readme.name} keeps its current results table."
        )
        return 0
    try:
        results = json.loads(arguments.results.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        print(f"error: {_shown(arguments.results)} is not valid JSON ({error}).", file=sys.stderr)
        return 2
    try:
        text = arguments.readme.read_text(encoding="utf-8")
        updated = replace_block(text, render(results, arguments.dataset), dataset=arguments.dataset)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if updated == text:
        print(f"{arguments.readme.name}: the results table is up to date.")
        return 0
    if arguments.check:
        print(
            f"{arguments.readme.name} is out of date with {arguments.results.name}: "
            "run `python tools/render_results.py`.",
            file=sys.stderr,
        )
        return 1
    arguments.readme.write_text(updated, encoding="utf-8")
    print(f"{arguments.readme.name}: results table rewritten from {arguments.results.name}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
