"""Where a run's outputs go: the results tables and the README's figures.

The default profile is the real run (``make tutorial``): it writes the measured results to
``results/<dataset>.json`` and the README's figures to ``docs/figures/``, both committed.
The smoke profile (tests, CI) shrinks the data, so its numbers mean nothing: it writes the
same files under ``executed/smoke/`` (ignored by git) and never overwrites a real result.

Every notebook that measures something records it with :func:`record_results`, under its
own section, so notebook 07 and notebook 08 can add to the same file without clobbering
each other; :func:`load_results` reads it back (the README table is rendered from it).
Each section also stores the fingerprints of the shipped model files it was measured with
(:func:`model_file_digests`), so a table measured with models that have since been
replaced can say so (``tools/render_results.py``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "models"
REAL_RUN_PROFILE = "default"
DIGEST_LENGTH = 16  # hexadecimal characters of SHA-256 kept: enough to tell files apart
WEIGHTS_SUFFIX = ".weights.h5"  # helpers.models.WEIGHTS_SUFFIX, without importing Keras


def model_file_digests(models_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Fingerprints the shipped model files, to tell which models a result was measured with.

    Args:
        models_dir: The folder of shipped models (default ``models/``); sub-folders such as
            ``models/smoke/`` and ``models/candidates/`` are not shipped and not included.

    Returns:
        Model name (file name without ``.weights.h5``) -> the first ``DIGEST_LENGTH`` hexadecimal
        characters of the file's SHA-256, sorted by name; empty if there are none.
    """
    folder = pathlib.Path(MODELS_DIR if models_dir is None else models_dir)
    return {
        path.name[: -len(WEIGHTS_SUFFIX)]: file_digest(path)
        for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}"))
    }


def file_digest(path: str | os.PathLike) -> str:
    """Returns the first ``DIGEST_LENGTH`` hexadecimal characters of a file's SHA-256.

    Args:
        path: The file.

    Returns:
        The fingerprint.
    """
    digest = hashlib.sha256()
    with pathlib.Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:DIGEST_LENGTH]


def outputs_root(profile) -> pathlib.Path:
    """Returns the folder a profile's outputs live under.

    Args:
        profile: A ``helpers.lab.profile.Profile`` (or anything with a ``name``).

    Returns:
        The repository root for the default profile, ``executed/<name>/`` for any other.
    """
    if profile.name == REAL_RUN_PROFILE:
        return ROOT
    return ROOT / "executed" / profile.name


def results_path(dataset_name: str, profile) -> pathlib.Path:
    """Returns the results file of a dataset for a profile (``results/<dataset>.json``).

    Args:
        dataset_name: ``"gtsrb"`` or ``"cifar10"``.
        profile: The run's profile.

    Returns:
        The path (which may not exist yet).

    Raises:
        ValueError: If ``dataset_name`` is not a plain lower-case name.
    """
    if not isinstance(dataset_name, str) or not dataset_name.replace("_", "").isalnum():
        raise ValueError(
            f"dataset_name must be a plain name such as 'gtsrb', got {dataset_name!r}."
        )
    return outputs_root(profile) / "results" / f"{dataset_name.lower()}.json"


def load_results(dataset_name: str, profile) -> dict:
    """Reads a dataset's results file.

    Args:
        dataset_name: ``"gtsrb"`` or ``"cifar10"``.
        profile: The run's profile.

    Returns:
        The recorded sections by name, or an empty dict when nothing was recorded yet.

    Raises:
        ValueError: If the file exists but is not valid JSON.
    """
    path = results_path(dataset_name, profile)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and rerun.") from error


def record_results(dataset_name: str, section: str, values: dict, profile) -> pathlib.Path:
    """Writes one section of a dataset's results file, keeping the other sections.

    The file is written under a temporary name and renamed, so a crash never leaves half a
    file. Each section gets the profile, the date it was measured on and the fingerprints of
    the shipped model files at that moment (``model_files``, see :func:`model_file_digests`).

    Args:
        dataset_name: ``"gtsrb"`` or ``"cifar10"``.
        section: The section's name, for example ``"robustness"`` (notebook 07) or
            ``"uncertainty"`` (notebook 08).
        values: JSON-serialisable numbers and labels of that section.
        profile: The run's profile.

    Returns:
        The path written.

    Raises:
        TypeError: If ``values`` is not a dict or cannot be written as JSON.
        ValueError: If ``section`` is empty.
    """
    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict, got {type(values).__name__}.")
    if not isinstance(section, str) or not section:
        raise ValueError(f"section must be a non-empty string, got {section!r}.")
    results = load_results(dataset_name, profile)
    results[section] = {
        **values,
        "profile": profile.name,
        "measured_on": datetime.date.today().isoformat(),
        "model_files": model_file_digests(),
    }
    path = results_path(dataset_name, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(results, indent=1, sort_keys=False) + "\n"
    except TypeError as error:
        raise TypeError(f"Section {section!r} holds a value JSON cannot store: {error}.") from error
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    pathlib.Path(temporary).replace(path)
    return path


def save_figure(figure, name: str, profile) -> pathlib.Path:
    """Saves a matplotlib figure for the README (``docs/figures/<name>.png``).

    Args:
        figure: A ``matplotlib.figure.Figure``.
        name: File name without extension, lower case with underscores.
        profile: The run's profile (smoke-profile figures go under ``executed/smoke/``).

    Returns:
        The path written.

    Raises:
        ValueError: If ``name`` is not a plain file name.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ValueError(f"name must be letters, digits and underscores, got {name!r}.")
    path = outputs_root(profile) / "docs" / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path
