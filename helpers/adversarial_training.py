"""Adversarial training through ``model.fit()`` (introduced in notebook 05).

:class:`AdversarialTrainer` wraps a model from ``helpers.models.build_cnn``. Its
``train_step`` crafts adversarial examples on the current weights, in inference mode (so
BatchNormalization statistics are not touched by the attack), with the very same
``signed_gradient_steps`` that ``helpers.attacks.pgd`` uses, then takes an optimizer step on
them. Because it is an ordinary ``keras.Model``, ``fit()`` keeps callbacks, history,
progress output, validation and distribution strategies.

Methods (``method=``):

- ``"fgsm"``: one step of size epsilon from the clean image (Goodfellow et al. 2015);
  prone to catastrophic overfitting.
- ``"fgsm_rs"``: a random start in the epsilon-ball, then one step of ``1.25 * epsilon``,
  projected ("Fast is better than free", Wong et al. 2020).
- ``"n_fgsm"``: noise from a ball twice as large, one step of epsilon, no projection
  (de Jorge et al. 2022); avoids catastrophic overfitting at no extra cost.
- ``"pgd"``: ``num_steps`` projected steps from a random start (Madry et al. 2018).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from helpers.attacks import fgsm, signed_gradient_steps
from helpers.evaluation import robust_accuracy
from helpers.lab.checks import check_epsilon, check_positive_int
from helpers.models import logits_model
from helpers.training import TrainingConfig, train_model

METHODS = ("fgsm", "fgsm_rs", "n_fgsm", "pgd")


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """How to train adversarially (see :class:`AdversarialTrainer`).

    Attributes:
        method: One of ``METHODS``.
        epsilon: Training budget on the [0, 1] pixel scale.
        step_size: Attack step; ``None`` for the method's default.
        num_steps: PGD steps (``pgd`` only).
        clean_weight: Share of the loss taken on clean images.
        warmup_epochs: Epochs over which epsilon ramps up from 0.
        monitor_samples: Validation images for the per-epoch PGD check (0 to skip).
        monitor_steps: PGD steps of that check.
    """

    method: str
    epsilon: float = 8 / 255
    step_size: float | None = None
    num_steps: int = 7
    clean_weight: float = 0.0
    warmup_epochs: int = 0
    monitor_samples: int = 500
    monitor_steps: int = 10


def check_method(method: str) -> str:
    """Returns ``method`` if it is a known adversarial-training method, else raises ValueError."""
    if method not in METHODS:
        raise ValueError(
            f"Unknown adversarial training method {method!r}; expected one of {list(METHODS)}."
        )
    return method


@keras.saving.register_keras_serializable(package="advlab")
class AdversarialTrainer(keras.Model):
    """Trains ``model`` on adversarial examples crafted on its current weights.

    Args:
        model: A model returning probabilities whose last layer is a softmax.
        method: One of ``METHODS``.
        epsilon: L-infinity budget on the [0, 1] pixel scale (8/255 is ``8 / 255``).
        step_size: Attack step on the [0, 1] scale; default per method (``fgsm`` and
            ``n_fgsm``: epsilon; ``fgsm_rs``: 1.25 epsilon; ``pgd``: 2.5 epsilon / steps).
        num_steps: PGD steps (``pgd`` only).
        clean_weight: Share of each batch's loss taken on clean images (0: adversarial only).
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        method: str,
        epsilon: float,
        step_size: float | None = None,
        num_steps: int = 7,
        clean_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.method = check_method(method)
        self.target_epsilon = check_epsilon(epsilon, allow_zero=False)
        self.num_steps = check_positive_int(num_steps, "num_steps") if method == "pgd" else 1
        step_ratios = {"fgsm": 1.0, "n_fgsm": 1.0, "fgsm_rs": 1.25, "pgd": 2.5 / self.num_steps}
        default_step = step_ratios[method]
        step = step_size if step_size is not None else default_step * self.target_epsilon
        self.step_ratio = check_epsilon(step, "step_size", allow_zero=False) / self.target_epsilon
        if not 0 <= clean_weight <= 1:
            raise ValueError(f"clean_weight must be in [0, 1], got {clean_weight!r}.")
        self.clean_weight = float(clean_weight)
        self.model = model
        self.logits = logits_model(model)
        # A variable, so a warm-up callback can change it without retracing train_step.
        self.epsilon = tf.Variable(
            self.target_epsilon, trainable=False, dtype=tf.float32, name="epsilon"
        )

    def call(self, images, training=False):
        return self.model(images, training=training)

    def craft(self, images, labels):
        """Returns adversarial images for a batch, crafted in inference mode.

        Args:
            images: float32 tensor (N, H, W, C) in [0, 1].
            labels: int64 tensor (N,), the true classes.

        Returns:
            The adversarial batch, with no gradient path back to the weights.
        """
        epsilon = self.epsilon
        step = self.step_ratio * epsilon
        if self.method == "fgsm":
            start, radius = images, epsilon
        elif self.method == "n_fgsm":
            start, radius = (
                images + tf.random.uniform(tf.shape(images), -2 * epsilon, 2 * epsilon),
                1.0,
            )
        else:
            start, radius = images + tf.random.uniform(tf.shape(images), -epsilon, epsilon), epsilon
        adversarial = signed_gradient_steps(
            self.logits,
            start,
            images,
            labels,
            epsilon=radius,
            step_size=step,
            num_steps=self.num_steps,
            direction=1.0,
        )
        return tf.stop_gradient(adversarial)

    def train_step(self, data):
        images, targets = data
        labels = tf.argmax(targets, axis=-1)
        adversarial = self.craft(images, labels)
        with tf.GradientTape() as tape:
            predictions = self(adversarial, training=True)
            loss = self.compute_loss(x=adversarial, y=targets, y_pred=predictions)
            if self.clean_weight > 0:
                clean_predictions = self(images, training=True)
                clean_loss = self.compute_loss(x=images, y=targets, y_pred=clean_predictions)
                loss = (1 - self.clean_weight) * loss + self.clean_weight * clean_loss
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(targets, predictions)
        return {metric.name: metric.result() for metric in self.metrics}


class EpsilonWarmup(keras.callbacks.Callback):
    """Raises the trainer's epsilon linearly from 0 to its target over the first epochs.

    Args:
        warmup_epochs: Epochs to reach the full epsilon (the ramp is per batch).
        steps_per_epoch: Batches per epoch.
    """

    def __init__(self, warmup_epochs: int, steps_per_epoch: int):
        super().__init__()
        self.total_steps = max(1, warmup_epochs * steps_per_epoch)
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        fraction = min(1.0, (self.step + 1) / self.total_steps)
        self.model.epsilon.assign(fraction * self.model.target_epsilon)
        self.step += 1


class RobustnessMonitor(keras.callbacks.Callback):
    """Reports PGD robust accuracy on a fixed validation sample after every epoch.

    Catastrophic overfitting (single-step training suddenly losing all robustness to
    PGD while its FGSM accuracy climbs) shows up here as a collapse of ``val_pgd_accuracy``.
    With ``restore_best=True`` the model ends with the weights of its most robust epoch.

    Args:
        images: Validation images (a fixed sample), float32 in [0, 1].
        labels: Their integer labels.
        epsilon: PGD budget on the [0, 1] pixel scale.
        num_steps: PGD steps.
        seed: Seeds PGD's random start, so epochs are compared on equal terms.
        restore_best: Restore the weights of the epoch with the best robust accuracy.
        report_fgsm: Also log ``val_fgsm_accuracy`` (shows catastrophic overfitting: FGSM
            accuracy rising while PGD accuracy collapses).
    """

    def __init__(
        self,
        images,
        labels,
        *,
        epsilon: float,
        num_steps: int = 10,
        seed: int = 0,
        restore_best: bool = True,
        report_fgsm: bool = False,
    ):
        super().__init__()
        self.report_fgsm = report_fgsm
        self.images, self.labels = images, labels
        self.epsilon = check_epsilon(epsilon)
        self.num_steps = check_positive_int(num_steps, "num_steps")
        self.seed = seed
        self.restore_best = restore_best
        self.best_accuracy, self.best_epoch, self.best_weights = -1.0, None, None

    def _inner(self) -> keras.Model:
        return self.model.model if isinstance(self.model, AdversarialTrainer) else self.model

    def on_epoch_end(self, epoch, logs=None):
        if self.report_fgsm and logs is not None:
            logs["val_fgsm_accuracy"] = robust_accuracy(
                self._inner(),
                self.images,
                self.labels,
                attack=fgsm,
                epsilon=self.epsilon,
                progress=False,
            )
        accuracy = robust_accuracy(
            self._inner(),
            self.images,
            self.labels,
            epsilon=self.epsilon,
            num_steps=self.num_steps,
            seed=self.seed,
            progress=False,
        )
        if logs is not None:
            logs["val_pgd_accuracy"] = accuracy
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch
            if self.restore_best:
                self.best_weights = self._inner().get_weights()

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            self._inner().set_weights(self.best_weights)
            print(
                f"Restored the weights of epoch {self.best_epoch + 1} "
                f"(val_pgd_accuracy {self.best_accuracy:.4f})."
            )


def train_adversarially(
    model,
    dataset,
    config: TrainingConfig,
    adversarial: AdversarialConfig,
    *,
    callbacks=(),
    verbose=2,
    trainer_class=None,
):
    """Trains ``model`` adversarially with ``helpers.training.train_model``.

    The model is wrapped in an :class:`AdversarialTrainer`; epsilon ramps up over
    ``adversarial.warmup_epochs`` (:class:`EpsilonWarmup`), and a fixed validation sample is
    attacked with PGD after every epoch (:class:`RobustnessMonitor`), which keeps the most
    robust epoch unless ``config.keep_best_epoch`` is False.

    Args:
        model: A model from ``helpers.models.build_cnn``.
        dataset: A ``helpers.data.Dataset``.
        config: Hyper-parameters of the training run.
        adversarial: How to craft the training examples.
        callbacks: Extra Keras callbacks.
        verbose: Keras verbosity.
        trainer_class: :class:`AdversarialTrainer` (default) or a subclass of it, for
            example one whose ``train_step`` a notebook rewrites.

    Returns:
        The ``keras.callbacks.History``; ``model`` keeps the chosen weights.
    """
    trainer_class = AdversarialTrainer if trainer_class is None else trainer_class
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, AdversarialTrainer)):
        raise TypeError(
            f"trainer_class must be AdversarialTrainer or a subclass of it, got {trainer_class!r}."
        )

    def wrap(model, steps_per_epoch):
        trainer = trainer_class(
            model,
            method=adversarial.method,
            epsilon=adversarial.epsilon,
            step_size=adversarial.step_size,
            num_steps=adversarial.num_steps,
            clean_weight=adversarial.clean_weight,
        )
        extra = []
        if adversarial.warmup_epochs:
            extra.append(EpsilonWarmup(adversarial.warmup_epochs, steps_per_epoch))
        if adversarial.monitor_samples:
            count = adversarial.monitor_samples
            extra.append(
                RobustnessMonitor(
                    dataset.validation[0][:count],
                    dataset.validation[1][:count],
                    epsilon=adversarial.epsilon,
                    num_steps=adversarial.monitor_steps,
                    seed=config.seed,
                    restore_best=config.keep_best_epoch,
                )
            )
        return trainer, extra

    return train_model(model, dataset, config, wrapper=wrap, callbacks=callbacks, verbose=verbose)
