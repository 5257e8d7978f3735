"""Tests for helpers.data and the archive readers behind it (gtsrb, cifar10, archives).

Real-data tests read the offline archives (ADVLAB_DATA_DIR, else ../shared/data); the full
GTSRB is decoded once per session into a temporary cache. The other tests build tiny
archives in the official layouts in tmp_path.
"""

from __future__ import annotations

import functools
import io
import pickle
import re
import zipfile

import numpy as np
import pytest
from conftest import CIFAR10_CLASS_NAMES
from PIL import Image

from helpers import data
from helpers.archives import cifar10, gtsrb
from helpers.data import load_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")


def assert_same_examples(images, labels, expected_images, expected_labels):
    """Asserts the same (image, label) pairs in any order (train and validation are shuffled)."""

    def canonical(image_array, label_array):
        return sorted(
            image.tobytes() + int(label).to_bytes(2, "little")
            for image, label in zip(image_array, label_array, strict=True)
        )

    assert len(labels) == len(expected_labels)
    assert canonical(as_uint8(images), labels) == canonical(
        np.asarray(expected_images), expected_labels
    )


def as_uint8(images: np.ndarray) -> np.ndarray:
    """Turns [0, 1] float images back into the uint8 pixels they were decoded from."""
    return np.round(images * 255).astype(np.uint8)


# --- Real offline archives ------------------------------------------------------------


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory):
    """A cache folder shared by the real-data tests, so GTSRB is decoded only once."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="session")
def real_gtsrb(real_data_dir, real_cache_dir):
    """The full GTSRB with the default split (seed 0), decoded once per session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(data.CACHE_DIR_VARIABLE, str(real_cache_dir))
        return load_dataset("gtsrb", data_dir=real_data_dir, download=False)


@pytest.fixture
def load_real(real_data_dir, real_cache_dir, real_gtsrb, isolated_cache, monkeypatch):
    """load_dataset on the offline archives, through the session's cache."""
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(real_cache_dir))
    return functools.partial(load_dataset, data_dir=real_data_dir, download=False)


def test_real_gtsrb_has_all_images_and_classes(real_gtsrb):
    train_y, val_y, test_y = (real_gtsrb.train[1], real_gtsrb.validation[1], real_gtsrb.test[1])
    assert len(train_y) + len(val_y) == 39_209
    assert len(test_y) == 12_630
    assert real_gtsrb.num_classes == 43
    assert real_gtsrb.class_names == list(gtsrb.CLASS_NAMES)
    assert len(set(real_gtsrb.class_names)) == 43
    for images, labels in (real_gtsrb.train, real_gtsrb.validation, real_gtsrb.test):
        assert images.shape == (len(labels), 32, 32, 3)
        assert images.dtype == np.float32
        assert labels.dtype == np.int64
        assert images.min() >= 0.0
        assert 0.9 < images.max() <= 1.0  # scaled once, not twice
    assert set(np.unique(train_y)) == set(np.unique(test_y)) == set(range(43))


def test_real_gtsrb_validation_has_every_class_and_about_a_tenth(real_gtsrb):
    labels = real_gtsrb.validation[1]
    assert set(np.unique(labels)) == set(range(43))
    assert 0.07 < len(labels) / 39_209 < 0.13


def test_real_gtsrb_validation_is_split_by_track(real_gtsrb, real_cache_dir):
    """Recomputes the default split from the cached track ids: no track on both sides."""
    (cache,) = real_cache_dir.glob("gtsrb-v1-roi-*.npz")  # cropped: the default
    with np.load(cache) as stored:
        images, labels = stored["train_images"], stored["train_labels"]
        tracks = stored["train_tracks"]
    assert len(np.unique(tracks)) > 1000  # about 30 frames per track
    is_validation = data.split_by_track(tracks, labels, 0.1, np.random.default_rng(0))
    assert not set(tracks[is_validation]) & set(tracks[~is_validation])
    assert_same_examples(*real_gtsrb.validation, images[is_validation], labels[is_validation])


def test_real_gtsrb_train_and_validation_are_shuffled_so_any_prefix_is_fair(real_gtsrb):
    """The archive lists images class by class; the first 500 must span many classes."""
    assert len(np.unique(real_gtsrb.validation[1][:500])) > 30
    assert len(np.unique(real_gtsrb.train[1][:500])) > 30


def test_real_gtsrb_same_seed_same_split_other_seed_differs(real_gtsrb, load_real):
    again = load_real("gtsrb", seed=0)
    np.testing.assert_array_equal(again.validation[0], real_gtsrb.validation[0])
    np.testing.assert_array_equal(again.train[1], real_gtsrb.train[1])
    del again
    other = load_real("gtsrb", seed=1)
    assert len(other.train[1]) + len(other.validation[1]) == 39_209
    assert not np.array_equal(other.validation[0], real_gtsrb.validation[0])


def test_real_gtsrb_limit_keeps_class_shares(real_gtsrb, load_real):
    limited = load_real("gtsrb", limit=500)
    assert "limited to 500" in limited.note
    for split in ("train", "validation", "test"):
        full_labels = getattr(real_gtsrb, split)[1]
        images, labels = getattr(limited, split)
        assert images.shape == (500, 32, 32, 3)
        expected = np.bincount(full_labels, minlength=43) * 500 / len(full_labels)
        counts = np.bincount(labels, minlength=43)
        assert np.all(np.abs(counts - expected) <= 1), split


def test_real_gtsrb_second_load_comes_from_cache(
    real_gtsrb, real_cache_dir, load_real, monkeypatch
):
    assert len(list(real_cache_dir.glob("gtsrb-v1-roi-*.npz"))) == 1

    def must_not_decode(*args, **kwargs):
        raise AssertionError("GTSRB was decoded again instead of read from the cache")

    monkeypatch.setattr(gtsrb, "read_training", must_not_decode)
    monkeypatch.setattr(gtsrb, "read_test", must_not_decode)
    limited = load_real("gtsrb", limit=100)
    assert len(limited.train[1]) == len(limited.test[1]) == 100


def test_real_archives_warn_that_they_are_not_the_official_files(load_real):
    with pytest.warns(UserWarning, match="is not the official"):
        load_real("gtsrb", limit=43)


def test_real_cifar10_subset_counts_names_and_note(load_real):
    dataset = load_real("cifar10")
    assert dataset.name == "cifar10"
    assert not dataset.cropped  # no regions of interest to crop to: whole images by default
    assert len(dataset.train[1]) == 4 * 1017  # data_batch_1..4
    assert len(dataset.validation[1]) == 1017  # data_batch_5
    assert len(dataset.test[1]) == 1017
    assert dataset.class_names == list(CIFAR10_CLASS_NAMES)
    assert "subset" in dataset.note
    for images, labels in (dataset.train, dataset.validation, dataset.test):
        assert images.shape == (len(labels), 32, 32, 3)
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert images.min() >= 0.0 and 0.9 < images.max() <= 1.0
        assert set(np.unique(labels)) == set(range(10))


# --- Small GTSRB archives built by the tests ------------------------------------------

TRAIN_FOLDER = "GTSRB/Final_Training/Images"
TEST_FOLDER = "GTSRB/Final_Test/Images"
HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2"
BORDER, BORDER_COLOR = 3, (255, 0, 255)
SIZES = ((20, 24), (45, 37), (24, 20))  # (width, height) by frame; none is 32x32


def sign_color(class_id: int, track: int, frame: int) -> tuple[int, int, int]:
    """The colour inside a training image's ROI: it tells which image it was."""
    return 40 + class_id, 100 + track, 150 + frame


def ppm(color, size) -> bytes:
    """A PPM image of ``size``: ``color`` inside the ROI, a 3-pixel border outside."""
    image = Image.new("RGB", size, BORDER_COLOR)
    image.paste(color, (BORDER, BORDER, size[0] - BORDER, size[1] - BORDER))
    buffer = io.BytesIO()
    image.save(buffer, format="PPM")
    return buffer.getvalue()


def csv_row(name: str, size, *extra) -> str:
    """A GTSRB CSV row whose (inclusive) ROI is the image without its border."""
    width, height = size
    roi = (BORDER, BORDER, width - BORDER - 1, height - BORDER - 1)
    return ";".join(map(str, (name, width, height, *roi, *extra)))


def gtsrb_members(classes=(0, 1, 2), tracks=4, frames=3, test_per_class=2):
    """Members of the three GTSRB archives in the official layout, by archive name."""
    train, test, test_rows = {}, {}, [HEADER + ";ClassId"]
    for class_id in classes:
        folder = f"{TRAIN_FOLDER}/{class_id:05d}"
        rows = [HEADER + ";ClassId"]
        for track in range(tracks):  # the same track numbers in every class
            for frame in range(frames):
                name, size = f"{track:05d}_{frame:05d}.ppm", SIZES[frame % len(SIZES)]
                train[f"{folder}/{name}"] = ppm(sign_color(class_id, track, frame), size)
                rows.append(csv_row(name, size, class_id))
        train[f"{folder}/GT-{class_id:05d}.csv"] = "\r\n".join(rows).encode() + b"\r\n"
        for _ in range(test_per_class):
            name, size = f"{len(test):05d}.ppm", SIZES[len(test) % len(SIZES)]
            test[f"{TEST_FOLDER}/{name}"] = ppm((40 + class_id, 220, 10 + len(test)), size)
            test_rows.append(csv_row(name, size, class_id))
    unlabelled = [row.rsplit(";", 1)[0] for row in test_rows]
    test[f"{TEST_FOLDER}/GT-final_test.test.csv"] = "\r\n".join(unlabelled).encode()
    return {
        gtsrb.TRAIN_ARCHIVE: train,
        gtsrb.TEST_ARCHIVE: test,
        gtsrb.TEST_LABELS_ARCHIVE: {"GT-final_test.csv": "\r\n".join(test_rows).encode()},
    }


def write_gtsrb(data_dir, archives=None):
    """Writes the three archives to ``data_dir/gtsrb`` and returns ``data_dir``."""
    folder = data_dir / "gtsrb"
    folder.mkdir(parents=True, exist_ok=True)
    for archive_name, members in (archives or gtsrb_members()).items():
        with zipfile.ZipFile(folder / archive_name, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)
    return data_dir


def identify(images: np.ndarray) -> list[tuple[int, int, int]]:
    """Reads (class, track, frame) back from the centre pixel of built training images."""
    red, green, blue = as_uint8(images[:, 16, 16]).astype(int).T
    return list(zip(red - 40, green - 100, blue - 150, strict=True))


@pytest.fixture
def small_gtsrb(tmp_path):
    """A data folder with tiny GTSRB archives: 3 classes x 4 tracks x 3 frames, 6 test images."""
    return write_gtsrb(tmp_path / "data")


def test_gtsrb_images_of_any_size_are_resized_to_32x32(small_gtsrb):
    dataset = load_dataset("gtsrb", data_dir=small_gtsrb, download=False)
    images = np.concatenate([dataset.train[0], dataset.validation[0]])
    assert images.shape == (36, 32, 32, 3)
    assert images.dtype == np.float32
    found = identify(images)
    assert sorted(found) == [(c, t, f) for c in range(3) for t in range(4) for f in range(3)]
    labels = np.concatenate([dataset.train[1], dataset.validation[1]])
    assert labels.dtype == np.int64
    assert [c for c, _, _ in found] == labels.tolist()
    test_images, test_labels = dataset.test
    assert test_images.shape == (6, 32, 32, 3)
    assert test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert (as_uint8(test_images[:, 16, 16, 0]) - 40).tolist() == test_labels.tolist()


def test_gtsrb_crop_roi_keeps_only_the_region_of_interest(small_gtsrb):
    full = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, crop_roi=False)
    cropped = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, crop_roi=True)
    assert not full.cropped and cropped.cropped
    assert as_uint8(full.train[0][:, 0, 0]).tolist() == [list(BORDER_COLOR)] * len(full.train[1])
    for images in (cropped.train[0], cropped.test[0]):
        pixels = as_uint8(images)
        assert np.all(pixels == pixels[:, 16:17, 16:17])  # one colour, the border is gone
    assert identify(cropped.train[0]) == identify(full.train[0])


def test_gtsrb_is_cropped_by_default(small_gtsrb):
    default = load_dataset("gtsrb", data_dir=small_gtsrb, download=False)
    cropped = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, crop_roi=True)
    assert default.cropped
    np.testing.assert_array_equal(default.train[0], cropped.train[0])
    np.testing.assert_array_equal(default.test[0], cropped.test[0])


@pytest.mark.parametrize("crop_roi", [1, "yes", 0.0])
def test_crop_roi_must_be_a_bool_or_none(small_gtsrb, crop_roi):
    with pytest.raises(TypeError, match="crop_roi must be True, False or None, got"):
        load_dataset("gtsrb", data_dir=small_gtsrb, download=False, crop_roi=crop_roi)


def test_gtsrb_validation_takes_whole_tracks_from_every_class(small_gtsrb):
    dataset = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, validation_size=0.5)
    train_tracks = {(c, t) for c, t, _ in identify(dataset.train[0])}
    validation_tracks = {(c, t) for c, t, _ in identify(dataset.validation[0])}
    assert not train_tracks & validation_tracks
    assert len(dataset.train[1]) == len(dataset.validation[1]) == 18  # all 3 frames of a track
    for class_id in range(3):  # track numbers repeat across classes; each class keeps its own
        assert sum(c == class_id for c, _ in validation_tracks) == 2
        assert sum(c == class_id for c, _ in train_tracks) == 2


def test_gtsrb_split_depends_on_the_seed_only(small_gtsrb):
    def validation_tracks(seed):
        dataset = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, seed=seed)
        return sorted({(c, t) for c, t, _ in identify(dataset.validation[0])})

    assert validation_tracks(3) == validation_tracks(3)
    assert validation_tracks(0) != validation_tracks(1)


def test_gtsrb_limit_gives_a_stratified_subset_of_each_split(small_gtsrb):
    dataset = load_dataset(
        "gtsrb", data_dir=small_gtsrb, download=False, validation_size=0.5, limit=5
    )
    for images, labels in (dataset.train, dataset.validation, dataset.test):
        assert images.shape == (5, 32, 32, 3)
        assert np.all(np.abs(np.bincount(labels, minlength=3) - 5 / 3) <= 1)
    everything = load_dataset("gtsrb", data_dir=small_gtsrb, download=False, limit=1000)
    assert len(everything.train[1]) + len(everything.validation[1]) == 36


def test_gtsrb_second_load_comes_from_the_cache(small_gtsrb, isolated_cache, monkeypatch):
    first = load_dataset("gtsrb", data_dir=small_gtsrb, download=False)
    assert [p.name[:13] for p in isolated_cache.iterdir()] == ["gtsrb-v1-roi-"]
    archives = {gtsrb.TRAIN_ARCHIVE, gtsrb.TEST_ARCHIVE, gtsrb.TEST_LABELS_ARCHIVE}
    assert {p.name for p in (small_gtsrb / "gtsrb").iterdir()} == archives  # nothing added

    def must_not_decode(*args, **kwargs):
        raise AssertionError("GTSRB was decoded again instead of read from the cache")

    monkeypatch.setattr(gtsrb, "read_training", must_not_decode)
    monkeypatch.setattr(gtsrb, "read_test", must_not_decode)
    second = load_dataset("gtsrb", data_dir=small_gtsrb, download=False)
    np.testing.assert_array_equal(second.train[0], first.train[0])
    np.testing.assert_array_equal(second.test[1], first.test[1])
    with pytest.raises(AssertionError, match="decoded again"):  # whole images: cached apart
        load_dataset("gtsrb", data_dir=small_gtsrb, download=False, crop_roi=False)


def test_local_archive_with_unofficial_md5_warns_and_is_used(small_gtsrb):
    with pytest.warns(
        UserWarning, match=r"GTSRB_Final_Training_Images\.zip: md5 \w+ is not the official"
    ):
        dataset = load_dataset("gtsrb", data_dir=small_gtsrb, download=False)
    assert len(dataset.test[1]) == 6


def test_cache_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert data.cache_directory() == (tmp_path / "elsewhere").resolve()


# --- Split helpers on synthetic labels ------------------------------------------------


def test_split_by_track_holds_out_whole_tracks_in_every_class():
    order = np.random.default_rng(0).permutation(300)  # frames of a track are not adjacent
    labels = np.repeat(np.arange(5), 60)[order]
    tracks = labels * 1000 + np.tile(np.arange(60) % 10, 5)[order]  # 10 tracks per class
    is_validation = data.split_by_track(tracks, labels, 0.2, np.random.default_rng(1))
    for track in np.unique(tracks):
        assert len(set(is_validation[tracks == track])) == 1, f"track {track} was cut in two"
    for class_id in range(5):
        held_out = np.unique(tracks[is_validation & (labels == class_id)])
        assert len(held_out) == 2  # 20% of 10 tracks
    again = data.split_by_track(tracks, labels, 0.2, np.random.default_rng(1))
    other = data.split_by_track(tracks, labels, 0.2, np.random.default_rng(2))
    np.testing.assert_array_equal(again, is_validation)
    assert not np.array_equal(other, is_validation)


def test_stratified_indices_preserve_class_shares():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    picked = data.stratified_indices(labels, 20, np.random.default_rng(0))
    assert len(picked) == len(set(picked)) == 20
    assert list(picked) == sorted(picked)
    assert np.bincount(labels[picked]).tolist() == [10, 6, 3, 1]
    odd = data.stratified_indices(labels, 7, np.random.default_rng(0))
    # Exact shares 3.5, 2.1, 1.05, 0.35: floors 3, 2, 1, 0, and the one left over goes to
    # the largest remainder (class 0).
    assert np.bincount(labels[odd], minlength=4).tolist() == [4, 2, 1, 0]
    other_seed = data.stratified_indices(labels, 20, np.random.default_rng(1))
    assert np.bincount(labels[other_seed]).tolist() == [10, 6, 3, 1]
    assert not np.array_equal(other_seed, picked)  # the seed picks which images
    assert len(data.stratified_indices(labels, 500, np.random.default_rng(0))) == 100


# --- Small CIFAR-10 archives built by the tests ---------------------------------------


def test_cifar10_tarball_counts_come_from_the_data(tmp_path, cifar10_files):
    names = ["class-" + letter for letter in "abcdefghij"]  # proves they come from batches.meta
    cifar10_files.members["batches.meta"] = pickle.dumps(
        {b"label_names": [n.encode() for n in names]}, protocol=3
    )
    cifar10_files.write_tarball(tmp_path / "cifar10" / cifar10.ARCHIVE)
    dataset = load_dataset("CIFAR-10", data_dir=tmp_path, download=False)
    expected = cifar10_files.arrays
    train = [expected[f"data_batch_{i}"] for i in range(1, 5)]
    assert_same_examples(
        *dataset.train, np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    )
    assert_same_examples(*dataset.validation, *expected["data_batch_5"])
    np.testing.assert_array_equal(as_uint8(dataset.test[0]), expected["test_batch"][0])
    np.testing.assert_array_equal(dataset.test[1], expected["test_batch"][1])
    assert dataset.train[0].dtype == np.float32 and dataset.train[1].dtype == np.int64
    assert dataset.class_names == names
    assert "subset" in dataset.note


def test_cifar10_extracted_study_layout_with_val_batch(tmp_path, cifar10_files):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    cifar10_files.members["val_batch"] = cifar10_files.members.pop("test_batch")
    for name, content in cifar10_files.members.items():
        (folder / name).write_bytes(content)
    assert (folder / "readme.html").exists()
    dataset = load_dataset("cifar10", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(dataset.test[1], cifar10_files.arrays["test_batch"][1])
    assert (len(dataset.train[1]), len(dataset.validation[1]), len(dataset.test[1])) == (18, 7, 8)
    assert dataset.class_names == list(CIFAR10_CLASS_NAMES)


# --- Bad arguments --------------------------------------------------------------------


def test_unknown_dataset_name_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"Unknown dataset 'mnist'; expected one of \['gtsrb', 'cifar10'\]"
    ):
        load_dataset("mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize(
    ("name", "type_name"), [(7, "int"), (None, "NoneType"), (b"gtsrb", "bytes")]
)
def test_dataset_name_must_be_a_string(tmp_path, name, type_name):
    with pytest.raises(TypeError, match=f"name must be a string such as 'gtsrb', got {type_name}"):
        load_dataset(name, data_dir=tmp_path, download=False)


@pytest.mark.parametrize("limit", [0, -5, 2.5, 10.0, True])
def test_limit_must_be_a_positive_integer(tmp_path, limit):
    with pytest.raises(
        ValueError, match=re.escape(f"limit must be a positive integer or None, got {limit!r}")
    ):
        load_dataset("gtsrb", data_dir=tmp_path, download=False, limit=limit)


@pytest.mark.parametrize("size", [0, 1, 1.5, -0.1])
def test_gtsrb_validation_size_must_be_a_share(tmp_path, size):
    with pytest.raises(ValueError, match=re.escape(f"in (0, 1), got {size!r}")):
        load_dataset("gtsrb", data_dir=tmp_path, download=False, validation_size=size)


@pytest.mark.parametrize("size", [0.1, 0.5])
def test_cifar10_validation_size_is_refused(tmp_path, size):
    with pytest.raises(
        ValueError, match=r"validation split is fixed .*data_batch_5.*validation_size=None"
    ):
        load_dataset("cifar10", data_dir=tmp_path, download=False, validation_size=size)


def test_cifar10_crop_roi_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only GTSRB has; load 'cifar10' with crop_roi=False"):
        load_dataset("cifar10", data_dir=tmp_path, download=False, crop_roi=True)


@pytest.mark.parametrize(
    ("name", "folder", "file_name"),
    [("gtsrb", "gtsrb", gtsrb.TRAIN_ARCHIVE), ("cifar10", "cifar10", cifar10.ARCHIVE)],
)
def test_offline_missing_archive_names_the_file_and_where_to_put_it(
    tmp_path, name, folder, file_name
):
    expected_path = (tmp_path / folder / file_name).resolve()
    message = f"{file_name} is missing and download=False. Put the official file at {expected_path}"
    with pytest.raises(FileNotFoundError, match=re.escape(message)):
        load_dataset(name, data_dir=tmp_path, download=False)
    assert not (tmp_path / folder).exists()


# --- Damaged and malicious archives ---------------------------------------------------


def test_truncated_zip_is_reported_as_truncated_or_corrupt(small_gtsrb):
    path = small_gtsrb / "gtsrb" / gtsrb.TRAIN_ARCHIVE
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"not a readable zip archive .*truncated or corrupt"):
        load_dataset("gtsrb", data_dir=small_gtsrb, download=False)


def test_truncated_tarball_is_reported_as_truncated_or_corrupt(tmp_path, cifar10_files):
    path = tmp_path / "cifar10" / cifar10.ARCHIVE
    content = cifar10_files.write_tarball(path)
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=r"not a readable tar archive .*truncated or corrupt"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_csv_listing_an_image_the_zip_lacks_is_refused(tmp_path):
    archives = gtsrb_members()
    del archives[gtsrb.TRAIN_ARCHIVE][f"{TRAIN_FOLDER}/00001/00002_00001.ppm"]
    write_gtsrb(tmp_path, archives)
    with pytest.raises(
        ValueError,
        match=r"GT-00001\.csv row '00002_00001\.ppm': the CSV lists an image the archive lacks",
    ):
        load_dataset("gtsrb", data_dir=tmp_path, download=False)


def test_image_listed_in_no_csv_is_refused(tmp_path):
    archives = gtsrb_members()
    stray = f"{TRAIN_FOLDER}/00002/00009_00000.ppm"
    archives[gtsrb.TRAIN_ARCHIVE][stray] = ppm((1, 2, 3), (20, 24))
    write_gtsrb(tmp_path, archives)
    with pytest.raises(ValueError, match=rf"1 images are in no CSV \(first: {stray}\)"):
        load_dataset("gtsrb", data_dir=tmp_path, download=False)


class _CreatesMarker:
    """Unpickling this calls open(marker, "w"): a harmless stand-in for os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_malicious_pickle_is_refused_without_running_it(tmp_path, cifar10_files):
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_CreatesMarker(control), protocol=2)).close()
    assert control.exists(), "the payload must really run when unpickled unsafely"

    marker = tmp_path / "marker"
    cifar10_files.members["data_batch_1"] = pickle.dumps(
        {b"data": _CreatesMarker(marker), b"labels": []}, protocol=3
    )
    cifar10_files.write_tarball(tmp_path / "cifar10" / cifar10.ARCHIVE)
    with pytest.raises(
        ValueError,
        match=r"data_batch_1 is not a valid CIFAR-10 batch \(global io\.open is not allowed\).*malicious",
    ):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("evil", ["../../evil.txt", "GTSRB/../../evil.txt", "/tmp/evil.txt"])
def test_zip_slip_member_in_zip_is_refused(tmp_path, evil):
    archives = gtsrb_members()
    archives[gtsrb.TRAIN_ARCHIVE][evil] = b"owned"
    write_gtsrb(tmp_path / "data", archives)
    with pytest.raises(ValueError, match=rf"unsafe path '{re.escape(evil)}'"):
        load_dataset("gtsrb", data_dir=tmp_path / "data", download=False)
    assert not list(tmp_path.rglob("evil.txt"))


@pytest.mark.parametrize("evil", ["../../evil.txt", "cifar-10-batches-py/../../evil.txt"])
def test_zip_slip_member_in_tarball_is_refused(tmp_path, cifar10_files, evil):
    data_dir = tmp_path / "data"
    cifar10_files.write_tarball(data_dir / "cifar10" / cifar10.ARCHIVE, extra={evil: b"owned"})
    with pytest.raises(ValueError, match=rf"unsafe path '{re.escape(evil)}'"):
        load_dataset("cifar10", data_dir=data_dir, download=False)
    assert not list(tmp_path.rglob("evil.txt"))
