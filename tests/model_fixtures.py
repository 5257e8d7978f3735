"""Fixtures that provide models and data for the attack, evaluation and model tests."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.data import load_dataset
from helpers.lab.recipes import load_trained_model
from helpers.models import build_cnn, weights_path

SHIPPED_STANDARD = weights_path("gtsrb_standard")
SHIPPED_ROBUST = weights_path("gtsrb_robust")


@pytest.fixture(scope="session")
def gtsrb_sample(real_data_dir):
    """A stratified 2,000-image sample of each GTSRB split (real data, cropped as the lab's)."""
    return load_dataset("gtsrb", data_dir=real_data_dir, limit=2000)


@pytest.fixture(scope="session")
def gtsrb_uncropped_sample(real_data_dir):
    """The same sample as whole images, not cropped to their region of interest."""
    return load_dataset("gtsrb", data_dir=real_data_dir, limit=2000, crop_roi=False)


@pytest.fixture(scope="session")
def shipped_standard_model():
    """The shipped standard GTSRB model; its absence is a failure, not a skip."""
    assert SHIPPED_STANDARD.exists(), f"{SHIPPED_STANDARD} is missing: train it (models/README.md)."
    return load_trained_model("gtsrb_standard")


@pytest.fixture(scope="session")
def shipped_robust_model():
    """The shipped adversarially trained GTSRB model; its absence is a failure, not a skip."""
    assert SHIPPED_ROBUST.exists(), f"{SHIPPED_ROBUST} is missing: train it (models/README.md)."
    return load_trained_model("gtsrb_robust")


@pytest.fixture(scope="session")
def small_model():
    """A small untrained CNN with random weights (fast; for properties, not accuracy)."""
    keras.utils.set_random_seed(0)
    return build_cnn(10, width=4)


@pytest.fixture
def random_batch():
    """Twelve random images in [0, 1] with labels for a 10-class model."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (12, 32, 32, 3)).astype(np.float32)
    return images, rng.integers(0, 10, 12)
