"""Tests for helpers.evaluation: accuracy and the early-stopping robust accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from helpers.attacks import fgsm, pgd
from helpers.evaluation import accuracy, predict_classes, robust_accuracy

EPSILON = 8 / 255


def test_accuracy_counts_correct_predictions(small_model, random_batch):
    images, _ = random_batch
    predicted = predict_classes(small_model, images)
    wrong = (predicted + 1) % 10
    assert accuracy(small_model, images, predicted) == 1.0
    assert accuracy(small_model, images, wrong) == 0.0
    half = np.where(np.arange(12) < 6, predicted, wrong)
    assert accuracy(small_model, images, half) == 0.5


def test_early_stop_is_never_weaker_than_full_pgd(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:300], gtsrb_sample.test[1][:300]
    settings = {"epsilon": 2 / 255, "num_steps": 10, "seed": 0}
    early = robust_accuracy(shipped_standard_model, images, labels, **settings)
    full = robust_accuracy(shipped_standard_model, images, labels, early_stop=False, **settings)
    assert early <= full


def test_robust_accuracy_matches_attacking_by_hand(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:200], gtsrb_sample.test[1][:200]
    adversarial = fgsm(shipped_standard_model, images, labels, 2 / 255)
    correct = predict_classes(shipped_standard_model, images) == labels
    survived = predict_classes(shipped_standard_model, adversarial) == labels
    expected = np.mean(correct & survived)
    assert robust_accuracy(
        shipped_standard_model, images, labels, attack=fgsm, epsilon=2 / 255
    ) == pytest.approx(expected)


def test_tf_data_pipeline_gives_same_result(small_model, random_batch):
    images, labels = random_batch
    pipeline = tf.data.Dataset.from_tensor_slices((images, labels)).batch(5)
    assert accuracy(small_model, images, labels) == robust_accuracy(
        small_model, pipeline, attack=pgd, epsilon=0.0, num_steps=1, progress=False
    )


def test_robust_accuracy_refuses_unknown_pgd_arguments(small_model, random_batch):
    images, labels = random_batch
    labels = predict_classes(small_model, images)  # all correct, so the attack runs
    with pytest.raises(TypeError, match="Unknown PGD arguments"):
        robust_accuracy(small_model, images, labels, epsilon=EPSILON, num_stesp=3)


def test_accuracy_refuses_empty_input(small_model):
    with pytest.raises(ValueError, match="at least one image"):
        accuracy(small_model, np.zeros((0, 32, 32, 3), np.float32), np.zeros(0, np.int64))
