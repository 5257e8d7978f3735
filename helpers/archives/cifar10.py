"""Decoding the official CIFAR-10 python batches into arrays (used by ``data``, notebook 01).

Each batch is a pickled dict with ``b'data'`` (uint8, N x 3072: the red plane, then green,
then blue, each 32x32 row-major, that is N x 3 x 32 x 32) and ``b'labels'``. Pickles can run
arbitrary code when loaded, so they are read with an unpickler that admits only the few
NumPy names the official files use. Counts come from the data, never assumed to be 10,000.
"""

from __future__ import annotations

import io
import pathlib
import pickle

import numpy as np

from helpers.archives.readers import read_tar_members

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4")
VALIDATION_BATCH = "data_batch_5"
TEST_BATCHES = ("test_batch", "val_batch")  # the study's own layout names it val_batch
META = "batches.meta"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # byte strings in pickles written by Python 3 with protocol 2
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global but NumPy's array reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def unpickle(data: bytes, where: str) -> dict:
    """Loads a CIFAR-10 pickle safely.

    Args:
        data: The pickle's bytes.
        where: A name for the error message.

    Returns:
        The batch dict (byte-string keys).

    Raises:
        ValueError: If the pickle uses anything but NumPy arrays, or is not a dict.
    """
    try:
        batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ValueError(
            f"{where} is not a valid CIFAR-10 batch ({error}). CIFAR-10 batches may only "
            "hold NumPy arrays, lists and strings; this file may be corrupt or malicious."
        ) from error
    if not isinstance(batch, dict):
        raise ValueError(
            f"{where} is not a CIFAR-10 batch: expected a dict, got {type(batch).__name__}."
        )
    return batch


def _to_arrays(batch: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Turns a batch dict into NHWC uint8 images and int64 labels."""
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"{where} lacks the key {error.args[0]!r}.") from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(
            f"{where}: expected data of shape (N, 3072) and N labels, "
            f"got {data.shape} and {len(labels)} labels."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read(source: pathlib.Path) -> dict[str, object]:
    """Reads train, validation and test batches and the class names.

    Args:
        source: The tarball ``cifar-10-python.tar.gz`` or an extracted
            ``cifar-10-batches-py`` folder (``test_batch`` or ``val_batch``).

    Returns:
        A dict with ``train``, ``validation`` and ``test`` pairs of (uint8 NHWC images,
        int64 labels) and ``class_names``.

    Raises:
        ValueError: If a batch is missing, corrupt or not a CIFAR-10 batch.
    """
    wanted = {*TRAIN_BATCHES, VALIDATION_BATCH, *TEST_BATCHES, META}
    if source.is_dir():
        raw = {p.name: p.read_bytes() for p in source.iterdir() if p.name in wanted}
    else:
        raw = read_tar_members(source, wanted)
    test_name = next((name for name in TEST_BATCHES if name in raw), None)
    missing = [n for n in (*TRAIN_BATCHES, VALIDATION_BATCH, META) if n not in raw]
    if missing or test_name is None:
        raise ValueError(
            f"{source} is incomplete: missing {missing + ([] if test_name else ['test_batch'])}."
        )

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        return _to_arrays(unpickle(raw[name], f"{source}:{name}"), f"{source}:{name}")

    train = [load(name) for name in TRAIN_BATCHES]
    meta = unpickle(raw[META], f"{source}:{META}")
    class_names = [
        name.decode() if isinstance(name, bytes) else str(name) for name in meta[b"label_names"]
    ]
    return {
        "train": (np.concatenate([i for i, _ in train]), np.concatenate([lab for _, lab in train])),
        "validation": load(VALIDATION_BATCH),
        "test": load(test_name),
        "class_names": class_names,
    }


def read_raw_batch(directory: pathlib.Path, name: str) -> dict:
    """Reads one batch as stored, from an extracted folder or the tarball in ``directory``.

    Notebook 01 uses it to show the on-disk layout (rows of 3,072 bytes, channel first).

    Args:
        directory: A folder holding ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
        name: The batch, for example ``"data_batch_1"``.

    Returns:
        The batch dict with byte-string keys (``b'data'``, ``b'labels'``, ...).

    Raises:
        FileNotFoundError: If neither the folder nor the tarball is there.
        ValueError: If the batch is missing or not a valid CIFAR-10 batch.
    """
    folder, archive = directory / FOLDER, directory / ARCHIVE
    if folder.is_dir():
        raw = {p.name: p.read_bytes() for p in folder.iterdir() if p.name == name}
    elif archive.exists():
        raw = read_tar_members(archive, {name})
    else:
        raise FileNotFoundError(
            f"Neither {folder} nor {archive} exists; load_dataset('cifar10') fetches it."
        )
    if name not in raw:
        raise ValueError(f"{directory} holds no CIFAR-10 batch named {name!r}.")
    return unpickle(raw[name], f"{directory}:{name}")
