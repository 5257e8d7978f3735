"""The one attack core: one step, one projection, one cache, shared by every attack."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from helpers import attacks, detection
from helpers.apgd import apgd_ce
from helpers.evaluation import predict_classes, robust_accuracy
from helpers.models import logits_model, logits_of

EPSILON = 8 / 255


def test_project_stays_in_the_ball_and_in_the_unit_box():
    originals = tf.constant([[0.0, 0.5, 1.0]])
    far = tf.constant([[-1.0, 0.9, 2.0]])
    projected = attacks.project(far, originals, 0.1).numpy()
    np.testing.assert_allclose(projected, [[0.0, 0.6, 1.0]], atol=1e-7)


def test_one_step_is_the_sign_of_the_loss_gradient_then_the_projection(small_model, random_batch):
    images, labels = random_batch
    logits = logits_model(small_model)
    x, y = tf.constant(images), tf.constant(labels)
    stepped, losses, _ = attacks.signed_gradient_step(
        logits, x, x, y, epsilon=EPSILON, step_size=EPSILON
    )
    _, gradient, _ = attacks.loss_and_gradient(logits, x, y)
    expected = np.clip(images + EPSILON * np.sign(gradient.numpy()), 0, 1)
    np.testing.assert_allclose(stepped.numpy(), expected, atol=1e-6)
    assert losses.shape == (len(images),)


def test_fgsm_is_one_core_step(small_model, random_batch):
    images, labels = random_batch
    x, y = tf.constant(images), tf.constant(labels)
    stepped, _, _ = attacks.signed_gradient_step(
        logits_model(small_model), x, x, y, epsilon=EPSILON, step_size=EPSILON
    )
    np.testing.assert_array_equal(attacks.fgsm(small_model, images, labels, EPSILON), stepped)


def test_every_function_of_a_model_lives_in_one_cache_and_is_traced_once(small_model, random_batch):
    images, labels = random_batch
    compiled = attacks.compiled_attack(small_model)
    assert attacks.compiled_attack(small_model) is compiled
    assert compiled.logits is logits_model(small_model) is logits_of(small_model)
    attacks.pgd_until_fooled(small_model, images, labels, EPSILON, num_steps=2)
    detection.high_confidence_pgd(small_model, images, labels, EPSILON, num_steps=2)
    apgd_ce(small_model, images, labels, EPSILON, num_steps=3)
    step = compiled.step(attacks.cross_entropy)
    traces = step.experimental_get_tracing_count()
    attacks.pgd_until_fooled(small_model, images[:5], labels[:5], 4 / 255, num_steps=3)
    assert step.experimental_get_tracing_count() == traces == 1
    assert ("apgd", "ce") in compiled._functions
    assert compiled.step(detection.wrong_class_log_probability) is not step


def test_first_success_keeps_a_fooling_image_where_it_reports_one(small_model, random_batch):
    images, labels = random_batch
    adversarial, fooled = attacks.first_success(
        small_model, images, labels, EPSILON, num_steps=5, restarts=2, seed=0
    )
    predicted = predict_classes(small_model, adversarial)
    assert fooled.any()
    np.testing.assert_array_equal(predicted[fooled] != labels[fooled], True)
    assert np.abs(adversarial - images).max() <= EPSILON + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_pgd_until_fooled_keeps_the_callers_type(small_model, random_batch):
    images, labels = random_batch
    adversarial = attacks.pgd_until_fooled(
        small_model, tf.constant(images), tf.constant(labels), EPSILON, num_steps=2
    )
    assert isinstance(adversarial, tf.Tensor) and adversarial.shape == images.shape


@pytest.mark.parametrize("attack", ["pgd_until_fooled", "high_confidence_pgd", "apgd_ce"])
def test_every_attack_returns_the_callers_type(attack, small_model, random_batch):
    images, labels = random_batch
    function = {
        "pgd_until_fooled": attacks.pgd_until_fooled,
        "high_confidence_pgd": detection.high_confidence_pgd,
        "apgd_ce": apgd_ce,
    }[attack]
    as_array = function(small_model, images, labels, EPSILON, num_steps=2)
    as_tensor = function(
        small_model, tf.constant(images), tf.constant(labels), EPSILON, num_steps=2
    )
    assert isinstance(as_array, np.ndarray) and isinstance(as_tensor, tf.Tensor)


def test_robust_accuracy_stops_early_with_pgd_bound_in_a_partial(
    small_model, random_batch, monkeypatch
):
    images, labels = random_batch
    calls = []
    original = attacks.first_success
    monkeypatch.setattr(
        attacks, "first_success", lambda *a, **k: calls.append(k) or original(*a, **k)
    )
    settings = dict(num_steps=4, seed=0, progress=False)
    direct = robust_accuracy(small_model, images, labels, epsilon=EPSILON, **settings)
    bound = functools.partial(attacks.pgd, num_steps=4, seed=0)
    through_partial = robust_accuracy(
        small_model, images, labels, epsilon=EPSILON, attack=bound, progress=False
    )
    assert through_partial == direct
    assert len(calls) == 2 and calls[1]["num_steps"] == 4  # both took the early-stop path


def test_robust_accuracy_refuses_unknown_pgd_settings_even_through_a_partial(
    small_model, random_batch
):
    images, labels = random_batch
    bound = functools.partial(attacks.pgd, num_stesp=4)
    with pytest.raises(TypeError, match="num_stesp"):
        robust_accuracy(small_model, images, labels, epsilon=EPSILON, attack=bound)
