"""Shipped records of the full-scale experiments, so a notebook runs at a lesson's pace.

Some results take far longer than a lesson should: the robustness table of notebook 07 over
a thousand images and six models, the method comparison of notebook 05. Such a result is
computed once, at full scale, by ``make reproduce`` (``tools/reproduce.py``), and stored as a
small JSON record under ``results/records/<dataset>/<name>.json``, together with what it was
computed from:

- ``settings``: every parameter that changes the result (budgets, steps, samples, seeds);
- ``model_files``: the fingerprints of the model files it used (the files
  ``helpers.lab.recipes.model_for_profile`` loads: a model retrained in a notebook is
  another file, so a record made with the shipped one is not used for it);
- ``command``, ``date``, ``machine``: how, when and where it was made.

A notebook asks :func:`load_record` for it with its *own* settings and models: the record is
returned only if both match, and the notebook says which one it shows; otherwise (a
learner changed ``EPSILON_255``, a model was retrained, no record exists) the notebook says
why and computes the result live. The learner always watches a small live run as well, and
the notebook compares the two.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import tempfile

from helpers.lab.outputs import ROOT, file_digest

RECORDS_DIR = ROOT / "results" / "records"
RECOMPUTE_VARIABLE = "ADVLAB_RECOMPUTE"  # tools/reproduce.py sets it to 1 (or force)
RECORDS_DIR_VARIABLE = "ADVLAB_RECORDS_DIR"  # another folder of records (tests use one)


@dataclasses.dataclass(frozen=True)
class Record:
    """A full-scale result with what it was computed from.

    Attributes:
        name: The experiment, for example ``"robustness_table"``.
        dataset: ``"gtsrb"`` or ``"cifar10"``.
        settings: The parameters that determine the result.
        model_files: Model name -> fingerprint of the shipped file used.
        data: The result itself (JSON values).
        command: The command that made it.
        date: ISO date it was made.
        machine: A short description of the CPU it was made on.
    """

    name: str
    dataset: str
    settings: dict
    model_files: dict
    data: dict
    command: str
    date: str
    machine: str

    def describe(self) -> str:
        """One sentence for a notebook: what is shown and where it came from."""
        return (
            f"Shown: the shipped record {self.dataset}/{self.name}.json, made on {self.date} "
            f"by `{self.command}` ({self.machine}); set RECOMPUTE = True to compute it here."
        )


def record_path(name: str, dataset: str, records_dir: os.PathLike | None = None) -> pathlib.Path:
    """Returns where the record ``name`` of ``dataset`` lives.

    Args:
        name: The experiment.
        dataset: The dataset name.
        records_dir: The folder of records; default ``$ADVLAB_RECORDS_DIR``, else
            ``results/records``.

    Returns:
        ``<records_dir>/<dataset>/<name>.json``.
    """
    folder = records_dir or os.environ.get(RECORDS_DIR_VARIABLE) or RECORDS_DIR
    return pathlib.Path(folder) / dataset / f"{name}.json"


def fingerprints(model_files) -> dict:
    """Fingerprints model files: name -> digest, or ``"missing"`` for a file that is absent.

    Args:
        model_files: Model name -> path of its weights file (or ``None``).

    Returns:
        The fingerprints, sorted by name.
    """
    return {
        name: file_digest(path) if path is not None and pathlib.Path(path).exists() else "missing"
        for name, path in sorted(dict(model_files).items())
    }


def _normalised(settings: dict) -> dict:
    """Settings as JSON would give them back (tuples become lists), to compare like with like."""
    return json.loads(json.dumps(settings, sort_keys=True))


def load_record(
    name: str,
    *,
    dataset: str,
    settings: dict,
    model_files=None,
    records_dir: os.PathLike | None = None,
    verbose: bool = True,
) -> Record | None:
    """Returns the shipped record if it was made with these settings and model files.

    Args:
        name: The experiment.
        dataset: The dataset name.
        settings: The notebook's settings, compared key by key with the record's.
        model_files: Model name -> weights file the notebook uses; their fingerprints must
            equal the record's.
        records_dir: Folder of the records (default ``results/records``).
        verbose: Print why a record is not used.

    Returns:
        The :class:`Record`, or ``None`` if there is none or it does not match.
    """
    path = record_path(name, dataset, records_dir)

    def refuse(reason: str) -> None:
        if verbose:
            print(f"No shipped record used for {dataset}/{name}: {reason}; computing it here.")

    if not path.exists():
        return refuse("there is none (make reproduce writes it)")
    stored = json.loads(path.read_text())
    wanted = _normalised(settings)
    if stored["settings"] != wanted:
        changed = sorted(
            key
            for key in set(wanted) | set(stored["settings"])
            if wanted.get(key) != stored["settings"].get(key)
        )
        return refuse(f"it was made with other settings ({', '.join(changed)})")
    if stored["model_files"] != fingerprints(model_files or {}):
        return refuse("it was made with other model files")
    return Record(**{field.name: stored[field.name] for field in dataclasses.fields(Record)})


def save_record(
    name: str,
    data: dict,
    *,
    dataset: str,
    settings: dict,
    model_files=None,
    command: str = "make reproduce",
    records_dir: os.PathLike | None = None,
) -> pathlib.Path:
    """Writes a record (atomically: a temporary file renamed into place).

    Args:
        name: The experiment.
        data: The result (JSON values).
        dataset: The dataset name.
        settings: The parameters the result depends on.
        model_files: Model name -> weights file it used.
        command: The command that made it.
        records_dir: Folder of the records (default ``results/records``).

    Returns:
        The record's path.
    """
    record = Record(
        name=name,
        dataset=dataset,
        settings=_normalised(settings),
        model_files=fingerprints(model_files or {}),
        data=json.loads(json.dumps(data)),
        command=command,
        date=datetime.date.today().isoformat(),
        machine=_machine(),
    )
    path = record_path(name, dataset, records_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(dataclasses.asdict(record), handle, indent=1)  # keeps the data's order
        handle.write("\n")
    os.replace(handle.name, path)
    return path


def load_or_compute(
    name: str,
    compute,
    *,
    dataset: str,
    settings: dict,
    model_files=None,
    recompute: bool = False,
    records_dir: os.PathLike | None = None,
) -> tuple[dict, Record | None]:
    """The shipped record if it matches, else the result computed here (and saved if asked).

    Args:
        name: The experiment.
        compute: A function of no arguments that computes the result (JSON values).
        dataset: The dataset name.
        settings: The notebook's settings for this result.
        model_files: Model name -> weights file the notebook uses.
        recompute: Compute even if a matching record exists (the notebook's ``RECOMPUTE``).
        records_dir: Folder of the records (default ``results/records``).

    Under ``make reproduce`` (``ADVLAB_RECOMPUTE=1``) what is computed is also written as the
    record, and a matching record is kept as it is; ``ADVLAB_RECOMPUTE=force`` recomputes
    and rewrites every record.

    Returns:
        ``(data, record)``: ``record`` is the shipped :class:`Record` used, or ``None`` when
        the data was computed here.
    """
    mode = os.environ.get(RECOMPUTE_VARIABLE, "")
    if mode not in ("", "1", "force"):
        raise ValueError(f"{RECOMPUTE_VARIABLE} must be unset, 1 or force; got {mode!r}.")
    if not (recompute or mode == "force"):
        record = load_record(
            name,
            dataset=dataset,
            settings=settings,
            model_files=model_files,
            records_dir=records_dir,
        )
        if record is not None:
            print(record.describe())
            return record.data, record
    data = json.loads(json.dumps(compute()))  # as a record would give it back
    if mode:
        path = save_record(
            name,
            data,
            dataset=dataset,
            settings=settings,
            model_files=model_files,
            records_dir=records_dir,
        )
        print(f"record written: {path}")
    return data, None


def _machine() -> str:
    """``"<cores> cores, <AVX-512 or AVX2> (<processor>)"`` as far as Linux tells."""
    flags, model = "", platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    kind = "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "no AVX2")
    return f"{os.cpu_count()} cores, {kind} ({model})"
