"""Tests for helpers.calibration (ECE, reliability bins, entropy) and temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.calibration import (
    check_probabilities,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    predict_logits,
    predictive_entropy,
    reliability_bins,
    softmax,
)

# Four predictions over three classes, computed by hand in the tests below:
# confidences 0.9 (right), 0.8 (wrong), 0.6 (right), 0.45 (wrong).
HAND_PROBABILITIES = np.array(
    [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.35, 0.45]]
)
HAND_LABELS = np.array([0, 1, 1, 0])


def calibrated_case() -> tuple[np.ndarray, np.ndarray]:
    """Ten predictions at confidence 0.7 (seven right) and ten at 0.9 (nine right)."""
    probabilities = np.array([[0.7, 0.2, 0.1]] * 10 + [[0.05, 0.9, 0.05]] * 10)
    labels = np.array([0] * 7 + [1] * 3 + [1] * 9 + [2])
    return probabilities, labels


@pytest.mark.parametrize("num_bins", [1, 5, 10, 15])
def test_ece_is_zero_when_accuracy_matches_confidence_in_every_bin(num_bins):
    probabilities, labels = calibrated_case()
    assert expected_calibration_error(probabilities, labels, num_bins=num_bins) == pytest.approx(
        0, abs=1e-12
    )


def test_ece_is_large_for_a_confident_model_that_is_always_wrong():
    probabilities, labels = calibrated_case()
    wrong = (probabilities.argmax(1) + 1) % 3
    expected = (10 * 0.7 + 10 * 0.9) / 20
    assert expected_calibration_error(probabilities, wrong) == pytest.approx(expected)


def test_ece_matches_hand_computed_values():
    # Two bins: (0, 0.5] holds 0.45 (wrong): gap 0.45; (0.5, 1] holds 0.9, 0.8, 0.6 with two
    # right: gap |2/3 - 2.3/3| = 0.1. ECE = 1/4 * 0.45 + 3/4 * 0.1 = 0.1875.
    assert expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS, num_bins=2) == pytest.approx(
        0.1875
    )
    # Four bins: 0.45 alone (gap 0.45), 0.6 alone and right (gap 0.4), 0.8 and 0.9 with one
    # right (gap |0.5 - 0.85| = 0.35). ECE = (0.45 + 0.4 + 2 * 0.35) / 4 = 0.3875.
    assert expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS, num_bins=4) == pytest.approx(
        0.3875
    )


def test_reliability_bins_hold_counts_accuracy_and_confidence():
    bins = reliability_bins(HAND_PROBABILITIES, HAND_LABELS, num_bins=4)
    np.testing.assert_allclose(bins.edges, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(bins.count, [0, 1, 1, 2])
    np.testing.assert_allclose(bins.accuracy[1:], [0, 1, 0.5])
    np.testing.assert_allclose(bins.confidence[1:], [0.45, 0.6, 0.85])
    assert np.isnan(bins.accuracy[0]) and np.isnan(bins.confidence[0])
    assert bins.expected_calibration_error == pytest.approx(0.3875)


def test_predictive_entropy_of_certain_and_uniform_predictions():
    certain_and_uniform = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(predictive_entropy(certain_and_uniform), [0.0, np.log(4)])


def test_float32_softmax_rows_are_accepted():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, (1000, 43)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert check_probabilities(probabilities.astype(np.float32)).shape == (1000, 43)


def test_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 10))
    true_temperature = 2.5  # the logits are 2.5 times too sharp
    sharp = softmax(logits, true_temperature)
    labels = np.array([rng.choice(10, p=row) for row in sharp])
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.1)


@pytest.mark.parametrize("scale", [0.2, 1.0, 5.0, 40.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temperature_scaling_never_raises_validation_nll(scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (300, 7))
    labels = np.where(rng.uniform(size=300) < 0.7, logits.argmax(1), rng.integers(0, 7, 300))
    temperature = fit_temperature(logits, labels)
    assert (
        negative_log_likelihood(logits, labels, temperature)
        <= negative_log_likelihood(logits, labels) + 1e-12
    )
    np.testing.assert_array_equal(softmax(logits, temperature).argmax(1), logits.argmax(1))


def test_temperature_stays_in_its_range_and_is_one_when_it_changes_nothing():
    logits = np.array([[2.0, 0.0], [0.0, 2.0]])
    labels = np.array([0, 1])  # both right: sharper is always better, but the range ends at 0.05
    assert fit_temperature(logits, labels) == pytest.approx(0.05, rel=1e-3)
    assert fit_temperature(np.zeros((4, 3)), np.array([0, 1, 2, 0])) == 1.0  # flat logits


def test_predict_logits_matches_the_model_softmax(small_model, random_batch):
    images, _ = random_batch
    probabilities = np.asarray(small_model(images, training=False))
    np.testing.assert_allclose(
        softmax(predict_logits(small_model, images)), probabilities, atol=1e-5
    )


BAD_PROBABILITIES = {
    "rows not summing to 1": (np.array([[0.5, 0.4], [0.5, 0.5]]), ValueError, "sum to 1"),
    "logits": (np.array([[2.0, -1.0, 0.5]]), ValueError, r"\[0, 1\]"),
    "negative": (np.array([[1.2, -0.2]]), ValueError, r"\[0, 1\]"),
    "one dimension": (np.array([0.2, 0.8]), ValueError, "shape"),
    "three dimensions": (np.full((2, 2, 2), 0.5), ValueError, "shape"),
    "one class": (np.ones((3, 1)), ValueError, "shape"),
    "not a number": (np.array([[np.nan, 1.0]]), ValueError, r"\[0, 1\]"),
    "strings": (np.array([["a", "b"]]), TypeError, "real numbers"),
}


@pytest.mark.parametrize("case", BAD_PROBABILITIES, ids=list(BAD_PROBABILITIES))
@pytest.mark.parametrize("function", [expected_calibration_error, reliability_bins])
def test_bad_probabilities_are_refused(case, function):
    probabilities, error, message = BAD_PROBABILITIES[case]
    with pytest.raises(error, match=message):
        function(probabilities, np.zeros(len(probabilities), np.int64))


@pytest.mark.parametrize("case", BAD_PROBABILITIES, ids=list(BAD_PROBABILITIES))
def test_entropy_refuses_bad_probabilities(case):
    probabilities, error, message = BAD_PROBABILITIES[case]
    with pytest.raises(error, match=message):
        predictive_entropy(probabilities)


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, True, "15"])
def test_bad_num_bins_are_refused(num_bins):
    with pytest.raises(ValueError, match="num_bins must be an integer >= 1"):
        expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS, num_bins=num_bins)


def test_label_and_probability_lengths_must_match():
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        expected_calibration_error(HAND_PROBABILITIES, HAND_LABELS[:3])


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        expected_calibration_error(HAND_PROBABILITIES, np.array([0, 1, 2, 3]))


def test_no_examples_are_refused():
    with pytest.raises(ValueError, match="at least one example"):
        expected_calibration_error(np.zeros((0, 3)), np.zeros(0, np.int64))


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf")])
def test_bad_temperatures_are_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        softmax(np.zeros((2, 3)), temperature)


def test_bad_logits_are_refused():
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(np.zeros(5), np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="finite"):
        negative_log_likelihood(np.array([[np.inf, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        fit_temperature(np.zeros((2, 3)), np.array([0]))
