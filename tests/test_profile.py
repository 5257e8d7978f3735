"""``helpers.lab.profile``: parameters that count images are used as set or refused, never cut."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.lab.profile import first_images, sample_size


def test_none_takes_the_profiles_size_cut_to_what_there_is():
    assert sample_size(None, name="EVAL_SAMPLES", default=1000) == 1000
    assert sample_size(None, name="EVAL_SAMPLES", default=12630, available=1000) == 1000


def test_a_value_set_by_hand_is_used_as_set():
    assert sample_size(5000, name="EVAL_SAMPLES", default=1000) == 5000
    assert sample_size(30, name="EVAL_SAMPLES", default=1000, available=1000) == 30


@pytest.mark.parametrize("value", [0, -5, 2.5, "100", True])
def test_a_count_that_is_not_a_positive_integer_is_refused(value):
    with pytest.raises(ValueError, match="EVAL_SAMPLES must be a positive integer or None"):
        sample_size(value, name="EVAL_SAMPLES", default=1000)


def test_more_than_there_is_is_refused_with_what_works():
    with pytest.raises(ValueError) as raised:
        sample_size(5000, name="EVAL_SAMPLES", default=25, available=1000)
    message = str(raised.value)
    assert "EVAL_SAMPLES = 5,000 asks for more images than the 1,000" in message
    assert "at most 1,000, or to None for this profile's 25" in message


def test_first_images_refuses_to_return_fewer():
    images, labels = np.zeros((10, 2, 2, 3)), np.arange(10)
    taken = first_images((images, labels), 4, name="ATTACK_SAMPLES")
    assert len(taken[0]) == len(taken[1]) == 4
    with pytest.raises(ValueError, match="ATTACK_SAMPLES = 11 asks for more images than the 10"):
        first_images((images, labels), 11, name="ATTACK_SAMPLES")
