"""Square Attack (Andriushchenko et al. 2020): its schedule, its budget, and why it is run.

A gradient-free attack checks a gradient attack's result: a defence whose gradient is zero
(bit-depth reduction, evaluated naively) stops PGD cold, but not the Square Attack.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import defenses
from helpers.attacks import pgd
from helpers.evaluation import accuracy
from helpers.square import square_attack, square_share


def test_the_square_shrinks_on_the_papers_schedule():
    assert square_share(0.8, 0, 10000) == 0.8
    assert square_share(0.8, 10, 10000) == 0.8
    assert square_share(0.8, 11, 10000) == 0.4
    assert square_share(0.8, 8001, 10000) == 0.8 / 2**9
    # Stretched to a shorter run: the same fractions of it.
    assert square_share(0.8, 100, 1000) == square_share(0.8, 1000, 10000) == 0.8 / 2**4


def test_adversarial_images_stay_in_the_ball_and_pixel_range(small_model, random_batch):
    images, labels = random_batch
    adversarial = square_attack(small_model, images, labels, 8 / 255, num_queries=30, seed=0)
    assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
    assert np.abs(adversarial - images).max() <= 8 / 255 + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    np.testing.assert_array_equal(
        adversarial, square_attack(small_model, images, labels, 8 / 255, num_queries=30, seed=0)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_queries": 0}, "num_queries must be"), ({"p_init": 0.0}, "p_init must be in")],
)
def test_bad_arguments_are_refused(small_model, random_batch, kwargs, message):
    images, labels = random_batch
    with pytest.raises(ValueError, match=message):
        square_attack(small_model, images, labels, 8 / 255, **kwargs)


@pytest.mark.slow
def test_square_gets_through_a_defence_whose_gradient_is_zero(shipped_standard_model, gtsrb_sample):
    defended = defenses.defended_model(shipped_standard_model, defenses.BitDepthReduction(4))
    images, labels = gtsrb_sample.test[0][:60], gtsrb_sample.test[1][:60]
    clean = accuracy(defended, images, labels)
    under_pgd = accuracy(defended, pgd(defended, images, labels, 8 / 255, seed=0), labels)
    under_square = accuracy(
        defended, square_attack(defended, images, labels, 8 / 255, num_queries=300, seed=0), labels
    )
    assert under_pgd > clean - 0.1, "with a zero gradient PGD should barely move"
    assert under_square < under_pgd - 0.3, "the random search does not need the gradient"
