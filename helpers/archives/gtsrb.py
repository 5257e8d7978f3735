"""Decoding the official GTSRB archives into arrays (used by ``data``, notebook 01).

The Final training set has 39,209 images in 43 class folders, each with a ``;``-separated
CSV (``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``). Training file names
are ``TTTTT_FFFFF.ppm``: track ``TTTTT``, frame ``FFFFF``. A track is about 30 frames of
one physical sign, so validation must be split by track. The test set's labels come from
``GT-final_test.csv`` in a separate archive. Images come in any size; they are resized to
32x32 (after an optional crop to the region of interest).
"""

from __future__ import annotations

import csv
import io
import pathlib
import posixpath

import numpy as np
from PIL import Image

from helpers.archives.readers import open_zip, read_zip_member

IMAGE_SIZE = 32
NUM_CLASSES = 43

TRAIN_ARCHIVE = "GTSRB_Final_Training_Images.zip"
TEST_ARCHIVE = "GTSRB_Final_Test_Images.zip"
TEST_LABELS_ARCHIVE = "GTSRB_Final_Test_GT.zip"

CLASS_NAMES = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 t",
    "Right-of-way at next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 t prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 t",
)


def _decode(data: bytes, row: dict[str, str], crop_roi: bool, where: str) -> np.ndarray:
    """Decodes one image, optionally crops its region of interest, resizes to 32x32."""
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as error:  # PIL raises many types for a damaged image.
        raise ValueError(f"{where}: cannot decode image ({error}).") from error
    if crop_roi:
        box = tuple(int(row[key]) for key in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
        image = image.crop((box[0], box[1], box[2] + 1, box[3] + 1))
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _read_csv(data: bytes, where: str) -> list[dict[str, str]]:
    """Parses a GTSRB annotation CSV, checking its columns."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    required = {"Filename", "ClassId", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"}
    if not rows or not required <= set(rows[0]):
        raise ValueError(
            f"{where} is not a GTSRB annotation CSV: expected ';'-separated columns "
            f"{sorted(required)}, found {sorted(rows[0]) if rows else 'no rows'}."
        )
    return rows


def _class_id(row: dict[str, str], where: str) -> int:
    """Reads and checks a row's ClassId."""
    try:
        class_id = int(row["ClassId"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: ClassId {row['ClassId']!r} is not an integer.") from error
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"{where}: ClassId {class_id} is outside 0..{NUM_CLASSES - 1}.")
    return class_id


def read_training(path: pathlib.Path, *, crop_roi: bool = False) -> tuple[np.ndarray, ...]:
    """Reads the Final training archive.

    Args:
        path: ``GTSRB_Final_Training_Images.zip``.
        crop_roi: Crop each image to its annotated region of interest before resizing.

    Returns:
        ``(images, labels, tracks)``: uint8 images (N, 32, 32, 3), int64 labels, and int64
        track ids that are unique across classes (``class_id * 100000 + track``).

    Raises:
        ValueError: If the archive is damaged, or a CSV and its images disagree.
    """
    images, labels, tracks = [], [], []
    with open_zip(path) as archive:
        names = set(archive.namelist())
        csv_names = sorted(n for n in names if n.endswith(".csv") and "/GT-" in "/" + n)
        if not csv_names:
            raise ValueError(
                f"{path} holds no GT-*.csv annotation files; is it the GTSRB Final "
                "training archive (GTSRB/Final_Training/Images/000NN/GT-000NN.csv)?"
            )
        listed = set()
        for csv_name in csv_names:
            folder = posixpath.dirname(csv_name)
            for row in _read_csv(read_zip_member(archive, csv_name), f"{path}:{csv_name}"):
                member = posixpath.join(folder, row["Filename"])
                where = f"{path}:{csv_name} row {row['Filename']!r}"
                if member not in names:
                    raise ValueError(f"{where}: the CSV lists an image the archive lacks.")
                listed.add(member)
                class_id = _class_id(row, where)
                track = int(row["Filename"].split("_")[0])
                images.append(_decode(read_zip_member(archive, member), row, crop_roi, where))
                labels.append(class_id)
                tracks.append(class_id * 100_000 + track)
        unlisted = sorted(n for n in names if n.endswith(".ppm") and n not in listed)
        if unlisted:
            raise ValueError(
                f"{path}: {len(unlisted)} images are in no CSV (first: {unlisted[0]}); "
                "the annotations do not match the images."
            )
    return np.stack(images), np.asarray(labels, np.int64), np.asarray(tracks, np.int64)


def read_test(images_path: pathlib.Path, labels_path: pathlib.Path, *, crop_roi: bool = False):
    """Reads the Final test archive with labels from ``GT-final_test.csv``.

    Args:
        images_path: ``GTSRB_Final_Test_Images.zip``.
        labels_path: ``GTSRB_Final_Test_GT.zip``.
        crop_roi: Crop each image to its region of interest before resizing.

    Returns:
        ``(images, labels)``: uint8 images (12630, 32, 32, 3) and int64 labels.

    Raises:
        ValueError: If an archive is damaged, or the labels and images disagree.
    """
    with open_zip(labels_path) as archive:
        csv_names = [n for n in archive.namelist() if n.endswith("GT-final_test.csv")]
        if not csv_names:
            raise ValueError(f"{labels_path} holds no GT-final_test.csv.")
        rows = _read_csv(read_zip_member(archive, csv_names[0]), f"{labels_path}")
    images, labels = [], []
    with open_zip(images_path) as archive:
        by_base = {posixpath.basename(n): n for n in archive.namelist() if n.endswith(".ppm")}
        if len(by_base) != len(rows):
            raise ValueError(
                f"{images_path} has {len(by_base)} images but {labels_path} labels "
                f"{len(rows)}; the test images and labels do not match."
            )
        for row in rows:
            where = f"{labels_path} row {row['Filename']!r}"
            member = by_base.get(row["Filename"])
            if member is None:
                raise ValueError(f"{where}: no such image in {images_path}.")
            labels.append(_class_id(row, where))
            images.append(_decode(read_zip_member(archive, member), row, crop_roi, where))
    return np.stack(images), np.asarray(labels, np.int64)
