"""Shared fixtures: the offline data folder, an isolated cache, small CIFAR-10 archives."""

from __future__ import annotations

import io
import os
import pathlib
import pickle
import struct
import tarfile

import numpy as np
import pytest

# Model and sample fixtures live in their own module; importing them here shares them.
from model_fixtures import (  # noqa: F401
    gtsrb_sample,
    gtsrb_uncropped_sample,
    random_batch,
    shipped_robust_model,
    shipped_standard_model,
    small_model,
)

from helpers import data

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# ADVLAB_DATA_DIR (relative paths are taken from the repository root), else ../shared/data.
OFFLINE_DATA_DIR = (
    REPO_ROOT / (os.environ.get(data.DATA_DIR_VARIABLE) or REPO_ROOT.parent / "shared" / "data")
).resolve()
CIFAR10_CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@pytest.fixture(scope="session")
def real_data_dir() -> pathlib.Path:
    """The offline copy of the real archives (described in ../shared/data/README.md)."""
    if not OFFLINE_DATA_DIR.is_dir():
        pytest.skip(f"offline data folder {OFFLINE_DATA_DIR} is absent (set ADVLAB_DATA_DIR)")
    return OFFLINE_DATA_DIR


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> pathlib.Path:
    """Sends the decoded-array cache to a fresh folder; clears the data and mirror variables."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(cache))
    monkeypatch.delenv(data.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.delenv(data.MIRROR_VARIABLE, raising=False)
    return cache


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 strings (BINSTRING), as in the official CIFAR-10 batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def python2_pickle(obj) -> bytes:
    """Pickles ``obj`` with protocol 2 and byte strings as Python 2 wrote them."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


class Cifar10Files:
    """Tiny CIFAR-10 batches (3 to 8 random images each) and the arrays they hold."""

    SIZES = dict(
        data_batch_1=3, data_batch_2=4, data_batch_3=5, data_batch_4=6, data_batch_5=7, test_batch=8
    )

    def __init__(self, label_names=CIFAR10_CLASS_NAMES, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.members: dict[str, bytes] = {}
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, count in self.SIZES.items():
            images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)  # NHWC
            labels = [int(label) for label in rng.integers(0, len(label_names), count)]
            self.arrays[name] = images, np.asarray(labels)
            self.members[name] = python2_pickle(
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072),  # planes R, G, B
                    b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(count)],
                }
            )
        self.members["batches.meta"] = python2_pickle(
            {
                b"num_cases_per_batch": 10000,
                b"label_names": [label.encode() for label in label_names],
                b"num_vis": 3072,
            }
        )
        self.members["readme.html"] = b'<meta HTTP-EQUIV="REFRESH" content="0; url=cifar.html">'

    def write_tarball(self, path: pathlib.Path, extra: dict[str, bytes] | None = None) -> bytes:
        """Writes ``cifar-10-batches-py/<member>`` (plus ``extra`` names as given) to a .tar.gz."""
        named = {f"cifar-10-batches-py/{name}": content for name, content in self.members.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as archive:
            for name, content in {**named, **(extra or {})}.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
        return path.read_bytes()


@pytest.fixture
def cifar10_files() -> Cifar10Files:
    """Tiny CIFAR-10 batches in the official format, to write as a tarball or a folder."""
    return Cifar10Files()
