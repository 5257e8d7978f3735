"""Tests for helpers.adversarial_training: the train_step, callbacks, strategy, errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.adversarial_training import (
    AdversarialConfig,
    AdversarialTrainer,
    RobustnessMonitor,
    train_adversarially,
)
from helpers.data import Dataset
from helpers.evaluation import accuracy, robust_accuracy
from helpers.lab.recipes import train
from helpers.models import build_cnn
from helpers.training import TrainingConfig

EPSILON = 8 / 255


def test_attack_inside_train_step_leaves_batchnorm_statistics_untouched(small_model, random_batch):
    trainer = AdversarialTrainer(small_model, method="pgd", epsilon=EPSILON, num_steps=3)
    images, labels = random_batch
    before = [w.numpy().copy() for w in small_model.non_trainable_weights]
    adversarial = trainer.craft(tf.constant(images), tf.constant(labels))
    after = [w.numpy() for w in small_model.non_trainable_weights]
    assert before and all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.abs(adversarial.numpy() - images).max() <= EPSILON + 1e-6


@pytest.mark.parametrize("method", ["fgsm", "fgsm_rs", "pgd"])
def test_crafted_examples_stay_in_ball_and_pixel_range(small_model, random_batch, method):
    trainer = AdversarialTrainer(small_model, method=method, epsilon=EPSILON, num_steps=2)
    images, labels = random_batch
    adversarial = trainer.craft(tf.constant(images), tf.constant(labels)).numpy()
    assert np.abs(adversarial - images).max() <= EPSILON + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_n_fgsm_may_leave_the_ball_but_not_the_pixel_range(small_model, random_batch):
    trainer = AdversarialTrainer(small_model, method="n_fgsm", epsilon=EPSILON)
    images, labels = random_batch
    adversarial = trainer.craft(tf.constant(images), tf.constant(labels)).numpy()
    assert EPSILON < np.abs(adversarial - images).max() <= 3 * EPSILON + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1


@pytest.mark.slow
def test_adversarial_training_raises_robust_accuracy_above_standard(gtsrb_sample):
    """On a small real subset, FGSM-RS training must beat standard training under PGD.

    Eight epochs on 2,000 images leave both models weak (about 25% clean), so the statistic
    is the share of *correctly classified* held-out images that survive PGD-10 at 8/255,
    on 1,000 images: a ratio, because raw accuracies of such weak models are at the mercy
    of run-to-run noise (models/README.md, "What the slow tests were calibrated on").
    """
    epsilon = 8 / 255
    config = TrainingConfig(epochs=8, batch_size=64, learning_rate=3e-3, patience=100)
    held_out = gtsrb_sample.test[0][:1000], gtsrb_sample.test[1][:1000]
    survival = {}
    for name, adversarial in [
        ("standard", None),
        ("fgsm_rs", AdversarialConfig("fgsm_rs", epsilon=epsilon, monitor_samples=0)),
    ]:
        model = build_cnn(43, width=16, standardize=False)
        train(model, gtsrb_sample, config, adversarial, verbose=0)
        clean = accuracy(model, *held_out)
        robust = robust_accuracy(
            model, *held_out, epsilon=epsilon, num_steps=10, seed=0, progress=False
        )
        survival[name] = robust / clean
    assert (
        survival["fgsm_rs"] > 2 * survival["standard"]
        and survival["fgsm_rs"] > survival["standard"] + 0.10
    ), survival


def test_robustness_monitor_matches_a_separate_robust_accuracy_call(gtsrb_sample):
    subset = Dataset(
        "gtsrb",
        (gtsrb_sample.train[0][:256], gtsrb_sample.train[1][:256]),
        (gtsrb_sample.validation[0][:100], gtsrb_sample.validation[1][:100]),
        gtsrb_sample.test,
        gtsrb_sample.class_names,
    )
    model = build_cnn(43, width=4, standardize=False)
    monitor = RobustnessMonitor(
        *subset.validation, epsilon=EPSILON, num_steps=5, seed=3, restore_best=False
    )
    history = train_adversarially(
        model,
        subset,
        TrainingConfig(epochs=1, batch_size=64),
        AdversarialConfig("fgsm_rs", epsilon=EPSILON, monitor_samples=0),
        callbacks=[monitor],
        verbose=0,
    )
    separate = robust_accuracy(
        model, *subset.validation, epsilon=EPSILON, num_steps=5, seed=3, progress=False
    )
    assert history.history["val_pgd_accuracy"] == [pytest.approx(separate)]


def test_training_under_mirrored_strategy_with_two_cpu_devices_gives_finite_losses():
    # Logical devices must be configured before TensorFlow starts, hence a fresh process.
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from helpers.adversarial_training import AdversarialTrainer
        from helpers.models import build_cnn
        from helpers.training import TrainingConfig, compile_model
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 1, (64, 32, 32, 3)).astype("float32")
        targets = tf.one_hot(rng.integers(0, 10, 64), 10)
        with strategy.scope():
            trainer = AdversarialTrainer(build_cnn(10, width=4), method="pgd", epsilon=8 / 255, num_steps=2)
            compile_model(trainer, TrainingConfig(), steps_per_epoch=4)
        data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(16)
        losses = trainer.fit(data, epochs=2, verbose=0).history["loss"]
        assert all(np.isfinite(losses)), losses
        print("losses", losses)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "losses" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"method": "free"}, ValueError, "Unknown adversarial training method 'free'"),
        ({"method": "pgd", "epsilon": 8}, ValueError, r"\[0, 1\] pixel scale"),
        ({"method": "pgd", "epsilon": 0.0}, ValueError, "epsilon must be > 0"),
        ({"method": "pgd", "epsilon": -0.1}, ValueError, "epsilon must be > 0"),
        ({"method": "pgd", "step_size": 2.0}, ValueError, "above 1"),
        ({"method": "pgd", "num_steps": 0}, ValueError, "num_steps must be an integer >= 1"),
        ({"method": "pgd", "clean_weight": 1.5}, ValueError, "clean_weight must be in"),
    ],
)
def test_bad_trainer_arguments_are_explained(small_model, arguments, error, message):
    arguments = {"epsilon": EPSILON, **arguments}
    with pytest.raises(error, match=message):
        AdversarialTrainer(small_model, **arguments)


def test_model_without_softmax_head_is_refused():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="final layer is a keras.layers.Softmax"):
        AdversarialTrainer(model, method="fgsm", epsilon=EPSILON)


def test_model_with_other_number_of_classes_is_refused(gtsrb_sample, small_model):
    config = TrainingConfig(epochs=1)
    with pytest.raises(ValueError, match="predicts 10 classes but gtsrb has 43"):
        train_adversarially(small_model, gtsrb_sample, config, AdversarialConfig("fgsm"))


def test_adversarial_config_is_a_frozen_record():
    config = AdversarialConfig("pgd")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.method = "fgsm"
