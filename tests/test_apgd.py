"""APGD-CE: its checkpoint schedule, its budget, and that it is never weaker than PGD."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import attacks
from helpers.apgd import apgd_ce, checkpoint_schedule
from helpers.evaluation import accuracy
from helpers.worst_case import worst_case_robustness


def test_checkpoints_follow_the_paper_for_100_iterations():
    schedule = checkpoint_schedule(100)
    # p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 of the iterations (Croce and Hein 2020).
    np.testing.assert_array_equal(np.flatnonzero(schedule) + 1, [22, 41, 57, 70, 80, 87, 93, 99])
    np.testing.assert_array_equal(schedule[schedule > 0], [22, 19, 16, 13, 10, 7, 6, 6])
    assert checkpoint_schedule(1).tolist() == [1]


def test_adversarial_images_stay_in_the_ball_and_pixel_range(small_model, random_batch):
    images, labels = random_batch
    adversarial = apgd_ce(small_model, images, labels, 8 / 255, num_steps=5, seed=0)
    assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
    assert np.abs(adversarial - images).max() <= 8 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_same_seed_same_images_and_restarts_never_help_the_model(small_model, random_batch):
    images, labels = random_batch
    once = apgd_ce(small_model, images, labels, 8 / 255, num_steps=5, seed=3)
    np.testing.assert_array_equal(
        once, apgd_ce(small_model, images, labels, 8 / 255, num_steps=5, seed=3)
    )
    twice = apgd_ce(small_model, images, labels, 8 / 255, num_steps=5, restarts=2, seed=3)
    assert accuracy(small_model, twice, labels) <= accuracy(small_model, once, labels)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["standard", "robust"])
def test_apgd_is_never_weaker_than_pgd_with_the_same_budget(
    which, shipped_standard_model, shipped_robust_model, gtsrb_sample
):
    model = shipped_standard_model if which == "standard" else shipped_robust_model
    images, labels = gtsrb_sample.test[0][:200], gtsrb_sample.test[1][:200]
    pgd_images = attacks.pgd(model, images, labels, 8 / 255, num_steps=20, seed=0)
    apgd_images = apgd_ce(model, images, labels, 8 / 255, num_steps=20, seed=0)
    pgd_accuracy, apgd_accuracy = (
        accuracy(model, pgd_images, labels),
        accuracy(model, apgd_images, labels),
    )
    assert apgd_accuracy <= pgd_accuracy + 0.005, (apgd_accuracy, pgd_accuracy)


def test_worst_case_is_never_above_pgd_or_clean(shipped_robust_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:100], gtsrb_sample.test[1][:100]
    result = worst_case_robustness(
        shipped_robust_model,
        images,
        labels,
        epsilon=8 / 255,
        num_steps=10,
        restarts=1,
        apgd_steps=10,
        progress=False,
    )
    assert result["worst_case"] <= result["pgd"] <= result["clean"]
    assert result["worst_case"] == pytest.approx(result["robust"].mean())
    assert 0.2 < result["worst_case"] < 0.8  # the robust model keeps about half at 8/255


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_steps": 0}, ValueError, "num_steps"),
        ({"restarts": 0}, ValueError, "restarts"),
        ({"rho": 1.0}, ValueError, "rho"),
        ({"alpha": 0.0}, ValueError, "alpha"),
        ({"epsilon": 2.0}, ValueError, "epsilon"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, error, message, small_model, random_batch):
    images, labels = random_batch
    arguments = {"epsilon": 8 / 255, **kwargs}
    with pytest.raises(error, match=message):
        apgd_ce(small_model, images, labels, **arguments)
