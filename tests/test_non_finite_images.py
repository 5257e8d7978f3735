"""Every attack, evaluation and training entry point refuses images with NaN or infinity.

A NaN pixel passes a range check (every comparison with NaN is false), and an attack would
then return NaN images that every later number silently averages over.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from helpers import apgd, attacks, detection, evaluation, sanity_checks, worst_case
from helpers.calibration import predict_logits
from helpers.data import Dataset
from helpers.lab import checks
from helpers.training import TrainingConfig, train_model

EPSILON = 8 / 255


def _entry_points():
    return {
        "fgsm": lambda m, x, y: attacks.fgsm(m, x, y, EPSILON),
        "pgd": lambda m, x, y: attacks.pgd(m, x, y, EPSILON, num_steps=2),
        "apgd_ce": lambda m, x, y: apgd.apgd_ce(m, x, y, EPSILON, num_steps=2),
        "pgd_until_fooled": lambda m, x, y: attacks.pgd_until_fooled(m, x, y, EPSILON, num_steps=2),
        "high_confidence_pgd": lambda m, x, y: detection.high_confidence_pgd(
            m, x, y, EPSILON, num_steps=2
        ),
        "predict_classes": lambda m, x, y: evaluation.predict_classes(m, x),
        "accuracy": lambda m, x, y: evaluation.accuracy(m, x, y),
        "robust_accuracy": lambda m, x, y: evaluation.robust_accuracy(
            m, x, y, epsilon=EPSILON, num_steps=2, progress=False
        ),
        "worst_case_robustness": lambda m, x, y: worst_case.worst_case_robustness(
            m, x, y, epsilon=EPSILON, num_steps=2, restarts=1, apgd_steps=2, progress=False
        ),
        "run_sanity_checks": lambda m, x, y: sanity_checks.run_sanity_checks(
            m, x, y, epsilon=EPSILON, num_steps=2
        ),
        "predict_logits": lambda m, x, y: predict_logits(m, x),
        "train_model": functools.partial(_train),
    }


def _train(model, images, labels):
    clean = np.full_like(images, 0.5)
    dataset = Dataset(
        "cifar10", (images, labels), (clean, labels), (clean, labels), list("abcdefghij")
    )
    return train_model(
        model, dataset, TrainingConfig(epochs=1, batch_size=4, augment=False), verbose=0
    )


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("entry_point", sorted(_entry_points()))
def test_non_finite_images_are_refused(small_model, random_batch, entry_point, bad_value):
    images, labels = random_batch
    images = images.copy()
    images[3, 5, 7, 1] = bad_value
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        _entry_points()[entry_point](small_model, images, labels)


def test_check_images_counts_every_non_finite_pixel():
    images = np.zeros((2, 4, 4, 3), np.float32)
    images[0, 0, 0] = np.nan  # three channels
    with pytest.raises(ValueError, match="3 NaN or infinite values"):
        checks.check_images(images)
