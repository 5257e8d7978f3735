"""Loading GTSRB and CIFAR-10 as arrays ready for training (introduced in notebook 01).

``load_dataset(name)`` finds the official archives in the data directory (the environment
variable ``ADVLAB_DATA_DIR``, else the repository's ``data/``), downloads any that are
missing, decodes them once into a cached ``.npz``, and returns train, validation and test
splits as float32 NHWC images in [0, 1] with int64 labels. GTSRB images are cropped to the
sign's annotated region of interest by default (``crop_roi``), as the shipped models expect.

Layout of the data directory (the official file names)::

    gtsrb/GTSRB_Final_Training_Images.zip
    gtsrb/GTSRB_Final_Test_Images.zip
    gtsrb/GTSRB_Final_Test_GT.zip
    cifar10/cifar-10-python.tar.gz      (or an extracted cifar10/cifar-10-batches-py/)
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import pathlib
import warnings

import numpy as np

from helpers.archives import cifar10, gtsrb
from helpers.archives.download import download as download_file
from helpers.archives.download import md5_of

DATA_DIR_VARIABLE = "ADVLAB_DATA_DIR"
MIRROR_VARIABLE = "ADVLAB_MIRROR_URL"
CACHE_DIR_VARIABLE = "ADVLAB_CACHE_DIR"
REPOSITORY_DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"
CACHE_VERSION = 1
DEFAULT_GTSRB_VALIDATION_SIZE = 0.1

GTSRB_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"

# name -> [(subfolder, file name, official base URL, official md5)]
ARCHIVES = {
    "gtsrb": [
        ("gtsrb", gtsrb.TRAIN_ARCHIVE, GTSRB_URL, "f33fd80ac59bff73c82d25ab499e03a3"),
        ("gtsrb", gtsrb.TEST_ARCHIVE, GTSRB_URL, "c7e4e6327067d32654124b0fe9e82185"),
        ("gtsrb", gtsrb.TEST_LABELS_ARCHIVE, GTSRB_URL, "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
    ],
    "cifar10": [("cifar10", cifar10.ARCHIVE, CIFAR10_URL, "c58f30108f718f92721af3b95e74349a")],
}
DATASET_NAMES = tuple(ARCHIVES)

Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass
class Dataset:
    """A dataset split three ways.

    Attributes:
        name: ``"gtsrb"`` or ``"cifar10"``.
        train: ``(images, labels)``: float32 (N, 32, 32, 3) in [0, 1], int64 class ids.
        validation: Same, for choosing hyper-parameters.
        test: Same, for final numbers only.
        class_names: Readable name of each class id.
        note: What a reader should know about these numbers (subset, limit), or "".
        cropped: Whether the images were cropped to their region of interest (GTSRB).
    """

    name: str
    train: Split
    validation: Split
    test: Split
    class_names: list[str]
    note: str = ""
    cropped: bool = False

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    def describe(self) -> str:
        """Returns a short description to print: name, classes, split sizes and the note.

        Every notebook prints it after loading its data, so the output says which data set
        (and which class names) the numbers below belong to.
        """
        sizes = ", ".join(
            f"{len(getattr(self, split)[1]):,} {split}" for split in ("train", "validation", "test")
        )
        shown = ", ".join(self.class_names[:4])
        more = f", ... ({self.num_classes} in all)" if self.num_classes > 4 else ""
        lines = [f"{self.name}: {sizes} images; classes {shown}{more}"]
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)


def data_directory(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Returns the data directory: the argument, else ``ADVLAB_DATA_DIR``, else ``data/``.

    A relative ``ADVLAB_DATA_DIR`` is taken from the repository root (so
    ``ADVLAB_DATA_DIR=../shared/data`` means the same in the shell and in a notebook); a
    relative ``data_dir`` argument is taken from the current folder, as Python paths are.

    Args:
        data_dir: An explicit directory, or ``None``.

    Returns:
        The directory as an absolute path.
    """
    if data_dir is not None:
        return pathlib.Path(data_dir).expanduser().resolve()
    return _from_environment(DATA_DIR_VARIABLE, REPOSITORY_DATA_DIR)


def _from_environment(variable: str, default: pathlib.Path) -> pathlib.Path:
    """Reads a folder from the environment; a relative path is taken from the repository root.

    Notebooks run with ``notebooks/`` as their working directory, so a path relative to
    the current folder would change meaning between the shell and the notebook.
    """
    value = os.environ.get(variable)
    if not value:
        return default
    path = pathlib.Path(value).expanduser()
    return (path if path.is_absolute() else REPOSITORY_DATA_DIR.parent / path).resolve()


def cache_directory() -> pathlib.Path:
    """Returns where decoded arrays are cached: ``ADVLAB_CACHE_DIR``, else ``data/cache``.

    A relative ``ADVLAB_CACHE_DIR`` is taken from the repository root.

    The cache never goes into the data directory, which may be read-only or shared.

    Returns:
        The cache folder (created on first write).
    """
    return _from_environment(CACHE_DIR_VARIABLE, REPOSITORY_DATA_DIR / "cache")


def _ensure_archive(data_dir, folder, file_name, base_url, official_md5, download, mirror_url):
    """Returns the archive's path and md5, downloading it if missing and allowed."""
    path = data_dir / folder / file_name
    if path.exists():
        actual = md5_of(path)
        if actual != official_md5:
            warnings.warn(
                f"{path}: md5 {actual} is not the official {official_md5}; using it as a "
                "local copy.",
                stacklevel=4,
            )
        return path, actual
    if not download:
        raise FileNotFoundError(
            f"{file_name} is missing and download=False. Put the official file at {path} "
            f"(from {base_url}{file_name}), or set {DATA_DIR_VARIABLE} to a folder that "
            f"has {folder}/{file_name}."
        )
    url = (mirror_url.rstrip("/") + "/" + file_name) if mirror_url else base_url + file_name
    download_file(url, path, official_md5)
    return path, official_md5


def _decode(name, data_dir, download, mirror_url, crop_roi) -> dict[str, np.ndarray]:
    """Decodes a dataset's archives into uint8 arrays, through the ``.npz`` cache."""
    if name == "cifar10":
        for folder in (data_dir / "cifar10" / cifar10.FOLDER, data_dir / cifar10.FOLDER):
            if folder.is_dir():  # an extracted copy, such as the study's own layout
                return _flatten(cifar10.read(folder))
    paths, digests = [], []
    for folder, file_name, base_url, official_md5 in ARCHIVES[name]:
        path, digest = _ensure_archive(
            data_dir, folder, file_name, base_url, official_md5, download, mirror_url
        )
        paths.append(path)
        digests.append(digest)
    key = "-".join(
        [name, f"v{CACHE_VERSION}", "roi" if crop_roi else "full", *(d[:8] for d in digests)]
    )
    cache = cache_directory() / f"{key}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return dict(stored)
    if name == "gtsrb":
        train_images, train_labels, tracks = gtsrb.read_training(paths[0], crop_roi=crop_roi)
        test_images, test_labels = gtsrb.read_test(paths[1], paths[2], crop_roi=crop_roi)
        arrays = {
            "train_images": train_images,
            "train_labels": train_labels,
            "train_tracks": tracks,
            "test_images": test_images,
            "test_labels": test_labels,
        }
    else:
        arrays = _flatten(cifar10.read(paths[0]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f"{cache.stem}.{os.getpid()}.part.npz")
    np.savez(partial, **arrays)
    os.replace(partial, cache)
    return arrays


def _flatten(arrays: dict) -> dict[str, np.ndarray]:
    """Turns the CIFAR-10 reader's nested dict into flat cacheable arrays."""
    flat = {"class_names": np.asarray(arrays["class_names"])}
    for split in ("train", "validation", "test"):
        flat[f"{split}_images"], flat[f"{split}_labels"] = arrays[split]
    return flat


def split_by_track(tracks, labels, validation_size: float, rng) -> np.ndarray:
    """Chooses whole tracks for validation, the same share of tracks in every class.

    Args:
        tracks: Track id of each training image.
        labels: Class id of each training image.
        validation_size: Share of each class's tracks to hold out, in (0, 1).
        rng: A NumPy random generator.

    Returns:
        A boolean mask, True for validation images.
    """
    chosen = []
    for class_id in np.unique(labels):
        class_tracks = np.unique(tracks[labels == class_id])
        count = min(len(class_tracks) - 1, max(1, round(validation_size * len(class_tracks))))
        chosen.append(rng.permutation(class_tracks)[:count])
    return np.isin(tracks, np.concatenate(chosen))


def stratified_indices(labels: np.ndarray, limit: int, rng) -> np.ndarray:
    """Picks ``limit`` indices with class shares as in ``labels`` (largest remainders).

    Args:
        labels: Class id of each example.
        limit: How many to pick; all when ``limit >= len(labels)``.
        rng: A NumPy random generator.

    Returns:
        Sorted indices into ``labels``.
    """
    if limit >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * limit / len(labels)
    quotas = np.floor(exact).astype(int)
    for position in np.argsort(quotas - exact)[: limit - quotas.sum()]:
        quotas[position] += 1
    picked = [
        rng.permutation(np.flatnonzero(labels == class_id))[:quota]
        for class_id, quota in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def _check_arguments(name, validation_size, limit, crop_roi) -> tuple[str, bool]:
    """Validates load_dataset's arguments; returns the normalized name and whether to crop."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'gtsrb', got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "")
    if key not in ARCHIVES:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {list(DATASET_NAMES)}.")
    if crop_roi is None:
        crop_roi = key == "gtsrb"  # only GTSRB annotates regions of interest
    if not isinstance(crop_roi, bool | np.bool_):
        raise TypeError(f"crop_roi must be True, False or None, got {crop_roi!r}.")
    if crop_roi and key != "gtsrb":
        raise ValueError(
            f"crop_roi=True needs annotated regions of interest, which only GTSRB has; "
            f"load {key!r} with crop_roi=False."
        )
    if validation_size is not None:
        if key == "cifar10":
            raise ValueError(
                "CIFAR-10's validation split is fixed as in the study (data_batch_5); "
                "pass validation_size=None."
            )
        if (
            not isinstance(validation_size, numbers.Real)
            or isinstance(validation_size, bool)
            or not (0 < validation_size < 1)
        ):
            raise ValueError(
                f"validation_size must be a share of the training tracks in (0, 1), "
                f"got {validation_size!r}."
            )
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1
    ):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    return key, bool(crop_roi)


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_size: float | None = None,
    seed: int = 0,
    download: bool = True,
    limit: int | None = None,
    crop_roi: bool | None = None,
    mirror_url: str | None = None,
) -> Dataset:
    """Loads a dataset's train, validation and test splits.

    Args:
        name: ``"gtsrb"`` or ``"cifar10"``.
        data_dir: Folder holding the archives; default ``ADVLAB_DATA_DIR`` or ``data/``.
        validation_size: GTSRB only: the share of each class's tracks held out for
            validation (default 0.1). CIFAR-10 always validates on ``data_batch_5``.
        seed: Seeds the validation split and the ``limit`` subsets.
        download: Download missing archives; if False, a missing archive is an error.
        limit: Keep at most this many images per split, with class shares preserved.
        crop_roi: Crop each image to its annotated region of interest before resizing
            (GTSRB only: the signs then fill the frame, the usual GTSRB pre-processing and
            what the shipped models are trained on). ``None`` (the default) crops GTSRB and
            leaves CIFAR-10, which has no annotations, whole; ``False`` keeps whole images.
        mirror_url: Base URL to download from instead of the official source (default
            ``ADVLAB_MIRROR_URL``), for course mirrors and proxies.

    Returns:
        A :class:`Dataset`.

    Raises:
        TypeError: If ``name`` is not a string or ``crop_roi`` is not a bool or ``None``.
        ValueError: For an unknown name, an out-of-range argument, ``crop_roi`` for a dataset
            other than GTSRB, or a corrupt archive.
        FileNotFoundError: If an archive is missing and cannot be downloaded.
    """
    key, crop_roi = _check_arguments(name, validation_size, limit, crop_roi)
    data_dir = data_directory(data_dir)
    mirror_url = mirror_url or os.environ.get(MIRROR_VARIABLE) or None
    arrays = _decode(key, data_dir, download, mirror_url, crop_roi)
    rng = np.random.default_rng(seed)
    if key == "gtsrb":
        images, labels = arrays["train_images"], arrays["train_labels"]
        is_validation = split_by_track(
            arrays["train_tracks"], labels, validation_size or DEFAULT_GTSRB_VALIDATION_SIZE, rng
        )
        splits = {
            "train": (images[~is_validation], labels[~is_validation]),
            "validation": (images[is_validation], labels[is_validation]),
            "test": (arrays["test_images"], arrays["test_labels"]),
        }
        class_names = list(gtsrb.CLASS_NAMES)
    else:
        splits = {
            s: (arrays[f"{s}_images"], arrays[f"{s}_labels"])
            for s in ("train", "validation", "test")
        }
        class_names = [str(n) for n in arrays["class_names"]]
    notes = []
    if key == "cifar10" and len(splits["test"][1]) < 10_000:
        notes.append(
            f"CIFAR-10 subset ({sum(len(s[1]) for s in splits.values()):,} of 60,000 images): "
            "accuracy is lower than on the full data"
        )
    if limit is not None:
        notes.append(f"limited to {limit:,} images per split")
    result = {}
    for split, (images, labels) in splits.items():
        keep = stratified_indices(labels, limit, rng) if limit else np.arange(len(labels))
        if split != "test":
            # The archives list images class by class; shuffled, any first N images of
            # train or validation are a fair sample. The test split keeps its official order.
            keep = rng.permutation(keep)
        result[split] = (images[keep].astype(np.float32) / 255.0, labels[keep].astype(np.int64))
    return Dataset(
        key,
        result["train"],
        result["validation"],
        result["test"],
        class_names,
        "; ".join(notes),
        cropped=crop_roi,
    )
