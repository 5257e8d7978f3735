"""Tests for helpers.detection: the confidence threshold and the attacks that test it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.attacks import pgd_until_fooled
from helpers.calibration import predict_logits, softmax
from helpers.detection import (
    ConfidenceDetector,
    catch_rate,
    fit_confidence_detector,
    high_confidence_pgd,
)
from helpers.evaluation import predict_classes

EPSILON = 8 / 255


def with_confidences(confidences) -> np.ndarray:
    """Two-class probability rows whose top probability (class 0) is each confidence."""
    confidences = np.asarray(confidences, np.float64)
    return np.stack([confidences, 1 - confidences], axis=1)


def test_threshold_rejects_the_requested_share_of_validation_inputs():
    confidences = np.linspace(0.51, 0.99, 200)  # all different
    detector = fit_confidence_detector(with_confidences(confidences), rejection_rate=0.05)
    assert detector.rejects(with_confidences(confidences)).sum() == 10
    assert detector.clean_rejection_rate == 0.05
    assert 0 < detector.threshold < 1


def test_ties_never_make_the_detector_reject_more_than_asked():
    confidences = np.array([0.6] * 50 + [0.9] * 50)
    detector = fit_confidence_detector(with_confidences(confidences), rejection_rate=0.1)
    assert detector.rejects(with_confidences(confidences)).mean() <= 0.1


def test_catch_rate_counts_rejected_mistakes_only():
    detector = ConfidenceDetector(threshold=0.8, clean_rejection_rate=0.05)
    probabilities = with_confidences([0.6, 0.7, 0.9, 0.95, 0.6])  # all predict class 0
    labels = np.array([1, 1, 1, 1, 0])  # the last is right: not an adversarial success
    assert catch_rate(detector, probabilities, labels) == pytest.approx(0.5)
    assert np.isnan(catch_rate(detector, probabilities, np.zeros(5, np.int64)))


@pytest.mark.parametrize("rate", [0, 1, -0.05, 1.5])
def test_rejection_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match="rejection_rate must lie strictly between 0 and 1"):
        fit_confidence_detector(with_confidences([0.7, 0.8]), rejection_rate=rate)


@pytest.mark.parametrize("rate", [True, "0.05", None])
def test_rejection_rate_that_is_not_a_number_is_refused(rate):
    with pytest.raises(TypeError, match="rejection_rate must be a number"):
        fit_confidence_detector(with_confidences([0.7, 0.8]), rejection_rate=rate)


@pytest.mark.parametrize("threshold", [0, 1, 1.2, -0.1])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold must lie strictly between 0 and 1"):
        ConfidenceDetector(threshold=threshold, clean_rejection_rate=0.05)


def test_a_saturated_model_gets_a_clear_error():
    with pytest.raises(ValueError, match="top probability of exactly 1"):
        fit_confidence_detector(with_confidences([1.0] * 10), rejection_rate=0.05)


def test_detector_refuses_bad_probabilities_and_labels():
    detector = ConfidenceDetector(threshold=0.8, clean_rejection_rate=0.05)
    with pytest.raises(ValueError, match="sum to 1"):
        detector.rejects(np.array([[0.5, 0.2]]))
    with pytest.raises(ValueError, match="validation_probabilities must lie in"):
        fit_confidence_detector(np.array([[3.0, -2.0]]))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        catch_rate(detector, with_confidences([0.6, 0.7, 0.9]), np.array([1, 1]))
    with pytest.raises(TypeError, match="detector must be a ConfidenceDetector"):
        catch_rate(0.8, with_confidences([0.6]), np.array([1]))


@pytest.mark.parametrize("attack", [pgd_until_fooled, high_confidence_pgd])
def test_attacks_stay_in_the_epsilon_ball_and_in_range(attack, small_model, random_batch):
    images, labels = random_batch
    adversarial = attack(small_model, images, labels, EPSILON, num_steps=3, seed=0)
    assert adversarial.shape == images.shape and adversarial.dtype == np.float32
    assert np.abs(adversarial - images).max() <= EPSILON + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


@pytest.mark.parametrize("attack", [pgd_until_fooled, high_confidence_pgd])
def test_attacks_refuse_bad_arguments(attack, small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match="0, 1] pixel scale"):
        attack(small_model, images, labels, 8)
    with pytest.raises(ValueError, match="labels=None"):
        attack(small_model, images, None, EPSILON)
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        attack(small_model, images, labels[:11], EPSILON)
    with pytest.raises(TypeError, match="keras.Model"):
        attack("model", images, labels, EPSILON)


def test_adaptive_attack_lowers_the_catch_rate_on_the_shipped_model(
    shipped_standard_model, gtsrb_sample
):
    """The detector catches most label flips that stop at the boundary, few confident ones."""
    model = shipped_standard_model
    detector = fit_confidence_detector(softmax(predict_logits(model, gtsrb_sample.validation[0])))
    images, labels = gtsrb_sample.test[0][:160], gtsrb_sample.test[1][:160]
    correct = predict_classes(model, images) == labels
    images, labels = images[correct], labels[correct]
    rates = {}
    for attack in (pgd_until_fooled, high_confidence_pgd):
        adversarial = attack(model, images, labels, EPSILON, num_steps=20, seed=0)
        probabilities = softmax(predict_logits(model, adversarial))
        assert np.mean(probabilities.argmax(1) != labels) > 0.8, "8/255 fools the standard model"
        rates[attack.__name__] = catch_rate(detector, probabilities, labels)
    assert rates["pgd_until_fooled"] > 0.5, rates
    assert rates["high_confidence_pgd"] < rates["pgd_until_fooled"] - 0.3, rates
    assert rates["high_confidence_pgd"] < 0.2, rates
