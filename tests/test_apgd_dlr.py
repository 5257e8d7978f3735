"""APGD on the DLR loss (Croce and Hein 2020): the loss itself, and why it is needed.

The DLR loss does not change when the logits are shifted or scaled; cross-entropy does. A
model whose logits are multiplied by a large factor answers exactly as before, but its
softmax saturates in float32 and the cross-entropy's input gradient vanishes, so APGD-CE
(and PGD) stall on it while APGD-DLR does not: the case the paper built the loss for.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.apgd import apgd_ce, apgd_dlr, dlr_loss
from helpers.evaluation import accuracy
from helpers.models import logits_model

LOGITS = tf.constant([[3.0, 1.0, 0.0, -1.0]])


def test_dlr_known_values():
    label0, label1 = tf.constant([0], tf.int64), tf.constant([1], tf.int64)
    np.testing.assert_allclose(dlr_loss(LOGITS, label0), [-2 / 3], rtol=1e-6)
    np.testing.assert_allclose(dlr_loss(LOGITS, label1), [2 / 3], rtol=1e-6)
    targeted = dlr_loss(LOGITS, label0, tf.constant([2], tf.int64))
    np.testing.assert_allclose(targeted, [-3 / (3 - (0 - 1) / 2)], rtol=1e-6)


@pytest.mark.parametrize(("scale", "shift"), [(10.0, 0.0), (0.01, 5.0), (1e4, -3.0)])
def test_dlr_ignores_shifts_and_positive_scales_of_the_logits(scale, shift):
    labels, targets = tf.constant([2], tf.int64), tf.constant([0], tf.int64)
    for target in (None, targets):
        np.testing.assert_allclose(
            dlr_loss(scale * LOGITS + shift, labels, target),
            dlr_loss(LOGITS, labels, target),
            rtol=1e-4,
        )


def test_adversarial_images_stay_in_the_ball_and_pixel_range(small_model, random_batch):
    images, labels = random_batch
    for targets in (None, 2):
        adversarial = apgd_dlr(
            small_model, images, labels, 8 / 255, target_classes=targets, num_steps=5, seed=0
        )
        assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
        assert np.abs(adversarial - images).max() <= 8 / 255 + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_more_target_classes_never_help_the_model(small_model, random_batch):
    images, labels = random_batch
    one = apgd_dlr(small_model, images, labels, 8 / 255, target_classes=1, num_steps=5, seed=1)
    three = apgd_dlr(small_model, images, labels, 8 / 255, target_classes=3, num_steps=5, seed=1)
    assert accuracy(small_model, three, labels) <= accuracy(small_model, one, labels)


@pytest.mark.parametrize(
    ("target_classes", "message"),
    [(0, "target_classes must be an integer >= 1"), (10, "target_classes must be at most 9")],
)
def test_bad_target_counts_are_refused(small_model, random_batch, target_classes, message):
    images, labels = random_batch
    with pytest.raises(ValueError, match=message):
        apgd_dlr(small_model, images, labels, 8 / 255, target_classes=target_classes)


@pytest.mark.slow
def test_dlr_breaks_a_model_whose_inflated_logits_mask_the_cross_entropy(
    shipped_standard_model, gtsrb_sample
):
    inflated_logits = keras.layers.Lambda(lambda z: 1e4 * z)(
        logits_model(shipped_standard_model).output
    )
    probabilities = keras.layers.Softmax()(inflated_logits)
    inflated = keras.Model(shipped_standard_model.input, probabilities)
    images, labels = gtsrb_sample.test[0][:100], gtsrb_sample.test[1][:100]
    clean = accuracy(inflated, images, labels)
    assert clean == accuracy(shipped_standard_model, images, labels)  # same answers
    settings = {"num_steps": 20, "seed": 0}
    under_ce = accuracy(inflated, apgd_ce(inflated, images, labels, 8 / 255, **settings), labels)
    under_dlr = accuracy(
        inflated, apgd_dlr(inflated, images, labels, 8 / 255, target_classes=3, **settings), labels
    )
    assert under_ce > clean - 0.2, "cross-entropy's gradient should vanish on most images"
    assert under_dlr < 0.2, "DLR is scale-invariant: the attack should go through"


@pytest.mark.slow
def test_worst_case_chain_only_ever_lowers_accuracy(shipped_robust_model, gtsrb_sample):
    from helpers.worst_case import worst_case_robustness

    images, labels = gtsrb_sample.test[0][:40], gtsrb_sample.test[1][:40]
    result = worst_case_robustness(
        shipped_robust_model,
        images,
        labels,
        epsilon=8 / 255,
        num_steps=5,
        restarts=1,
        apgd_steps=10,
        apgd_targets=2,
        square_queries=30,
        each_attack_alone=True,
        progress=False,
    )
    chain = [result[name] for name in ("clean", "pgd", "apgd_ce", "apgd_t", "square")]
    assert chain == sorted(chain, reverse=True)
    assert result["worst_case"] == chain[-1] == result["robust"].mean()
    assert set(result["alone"]) == {"pgd", "apgd_ce", "apgd_t", "square"}
    for name, own in result["alone"].items():
        assert result["worst_case"] <= own <= result["clean"], name
