"""Tests for helpers.attacks: properties that can fail, known answers, clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.attacks import compiled_attack, fgsm, pgd
from helpers.evaluation import accuracy, predict_classes, robust_accuracy

EPSILON = 8 / 255


def _linear_model(weights: np.ndarray, bias: np.ndarray) -> keras.Model:
    """A 2x2x1-input linear classifier with a final softmax and the given weights."""
    inputs = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(inputs)
    logits = keras.layers.Dense(3)(flat)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.layers[2].set_weights([weights, bias])
    return model


def test_fgsm_matches_hand_computed_sign_of_gradient():
    weights = np.array(
        [[1.0, -2.0, 0.5], [0.0, 1.0, -1.0], [3.0, 0.0, 1.0], [-1.0, 1.0, 2.0]], np.float32
    )
    bias = np.array([0.1, -0.2, 0.0], np.float32)
    model = _linear_model(weights, bias)
    image = np.array([0.5, 0.2, 0.7, 0.4], np.float32)
    label = 0
    # Cross-entropy on logits z = W^T x + b: d loss / d x = W (softmax(z) - onehot(label)).
    logits = image @ weights + bias
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    gradient = weights @ (probabilities - np.eye(3)[label])
    expected = np.clip(image + 0.1 * np.sign(gradient), 0, 1)

    adversarial = fgsm(model, image.reshape(1, 2, 2, 1), np.array([label]), 0.1)

    np.testing.assert_allclose(adversarial.reshape(4), expected, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(
    epsilon=st.floats(0, 0.3),
    num_steps=st.integers(1, 4),
    random_start=st.booleans(),
    targeted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_perturbation_stays_in_ball_and_pixel_range(
    small_model, epsilon, num_steps, random_start, targeted, seed
):
    rng = np.random.default_rng(seed)
    # Include saturated pixels so the [0, 1] clip is exercised.
    images = np.clip(rng.uniform(-0.2, 1.2, (5, 32, 32, 3)), 0, 1).astype(np.float32)
    labels = rng.integers(0, 10, 5)
    adversarial = pgd(
        small_model,
        images,
        labels,
        epsilon,
        num_steps=num_steps,
        random_start=random_start,
        targeted=targeted,
        seed=seed,
    )
    assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
    assert np.abs(adversarial - images).max() <= epsilon + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_one_step_pgd_without_random_start_equals_fgsm(small_model, random_batch):
    images, labels = random_batch
    one_step = pgd(
        small_model, images, labels, EPSILON, step_size=EPSILON, num_steps=1, random_start=False
    )
    np.testing.assert_array_equal(one_step, fgsm(small_model, images, labels, EPSILON))


def test_same_seed_same_images_and_other_seed_differs(small_model, random_batch):
    images, labels = random_batch
    first = pgd(small_model, images, labels, EPSILON, num_steps=2, seed=3)
    np.testing.assert_array_equal(
        first, pgd(small_model, images, labels, EPSILON, num_steps=2, seed=3)
    )
    assert not np.array_equal(first, pgd(small_model, images, labels, EPSILON, num_steps=2, seed=4))


def test_tensor_in_tensor_out(small_model, random_batch):
    images, labels = random_batch
    adversarial = fgsm(small_model, tf.constant(images), tf.constant(labels), EPSILON)
    assert isinstance(adversarial, tf.Tensor) and adversarial.shape == images.shape


def test_attack_loop_is_traced_once_across_calls(small_model, random_batch):
    images, labels = random_batch
    attack = compiled_attack(small_model)
    pgd(small_model, images, labels, EPSILON, num_steps=2)
    loop = attack.function(("pgd_loop",), None)
    traces = loop.experimental_get_tracing_count()
    pgd(small_model, images[:5], labels[:5], 4 / 255, num_steps=3, batch_size=3)
    fgsm(small_model, images, labels, 2 / 255)
    assert loop.experimental_get_tracing_count() == traces == 1


def test_batchnorm_statistics_unchanged_by_attack(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:64], gtsrb_sample.test[1][:64]
    before = [w.numpy().copy() for w in shipped_standard_model.non_trainable_weights]
    pgd(shipped_standard_model, images, labels, EPSILON, num_steps=3)
    after = [w.numpy() for w in shipped_standard_model.non_trainable_weights]
    assert before and all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_pgd_never_weaker_than_fgsm_on_shipped_model(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:300], gtsrb_sample.test[1][:300]
    after_fgsm = robust_accuracy(
        shipped_standard_model, images, labels, attack=fgsm, epsilon=EPSILON
    )
    after_pgd = robust_accuracy(
        shipped_standard_model, images, labels, epsilon=EPSILON, num_steps=10, seed=0
    )
    assert after_pgd <= after_fgsm
    assert after_pgd < accuracy(shipped_standard_model, images, labels)


def test_epsilon_zero_gives_clean_accuracy(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:300], gtsrb_sample.test[1][:300]
    clean = accuracy(shipped_standard_model, images, labels)
    assert (
        robust_accuracy(shipped_standard_model, images, labels, attack=fgsm, epsilon=0.0) == clean
    )
    assert (
        robust_accuracy(shipped_standard_model, images, labels, epsilon=0.0, num_steps=3) == clean
    )


def test_large_epsilon_drives_accuracy_near_zero(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:200], gtsrb_sample.test[1][:200]
    assert (
        robust_accuracy(shipped_standard_model, images, labels, epsilon=0.5, num_steps=10, seed=0)
        <= 0.02
    )


def test_targeted_pgd_reaches_targets_far_above_chance(shipped_standard_model, gtsrb_sample):
    images, labels = gtsrb_sample.test[0][:100], gtsrb_sample.test[1][:100]
    targets = (labels + 1) % 43
    adversarial = pgd(
        shipped_standard_model, images, targets, EPSILON, num_steps=20, targeted=True, seed=0
    )
    hit_rate = np.mean(predict_classes(shipped_standard_model, adversarial) == targets)
    assert hit_rate > 5 / 43, f"targeted success {hit_rate:.2f} is not above chance"


def test_restarts_keep_the_fooling_restart(small_model, random_batch):
    images, labels = random_batch
    single = pgd(small_model, images, labels, EPSILON, num_steps=2, seed=0)
    several = pgd(small_model, images, labels, EPSILON, num_steps=2, restarts=3, seed=0)
    fooled_single = predict_classes(small_model, single) != labels
    fooled_several = predict_classes(small_model, several) != labels
    assert fooled_several.sum() >= fooled_single.sum()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"epsilon": -0.1}, ValueError, "must be >= 0"),
        ({"epsilon": 8}, ValueError, r"\[0, 1\] pixel scale.*8 / 255"),
        ({"epsilon": 1.5}, ValueError, "above 1"),
        ({"epsilon": "8/255"}, TypeError, "must be a number"),
        ({"epsilon": EPSILON, "step_size": 0.0}, ValueError, "step_size must be > 0"),
        ({"epsilon": EPSILON, "step_size": -0.01}, ValueError, "step_size must be > 0"),
        ({"epsilon": EPSILON, "num_steps": 0}, ValueError, "num_steps must be an integer >= 1"),
        ({"epsilon": EPSILON, "restarts": 0}, ValueError, "restarts must be an integer >= 1"),
    ],
)
def test_bad_attack_arguments_are_explained(small_model, random_batch, arguments, error, message):
    images, labels = random_batch
    with pytest.raises(error, match=message):
        pgd(small_model, images, labels, **arguments)


def test_images_on_255_scale_are_refused(small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\].*divide 0-255 pixels by 255"):
        fgsm(small_model, images * 255, labels, EPSILON)


def test_images_without_batch_axis_are_refused(small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match="add a batch axis"):
        fgsm(small_model, images[0], labels[:1], EPSILON)


def test_mismatched_lengths_are_refused(small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        pgd(small_model, images, labels[:11], EPSILON)


def test_labels_out_of_range_are_refused(small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        fgsm(small_model, images, labels + 10, EPSILON)


def test_targeted_without_target_labels_is_refused(small_model, random_batch):
    images, _ = random_batch
    with pytest.raises(ValueError, match="needs target labels"):
        pgd(small_model, images, None, EPSILON, targeted=True)
