"""Sanity checks for a robustness evaluation (Carlini et al. 2019), notebook 07.

A defence that hides its gradients looks robust to a gradient attack without being
robust. These checks catch the usual signs, each printed as pass or fail with its numbers:

1. **Iterative beats single-step**: PGD is never weaker than FGSM.
2. **Accuracy falls with epsilon**: it does not rise as the budget grows and is about 0
   (at most ``floor``, 5%) at a large budget (``large_epsilon``, 64/255 by default). Carlini
   et al. ask that an unbounded attack succeed on every image, if only by changing it into
   an image of another class. 64/255 does not reach every image, nor grey: a black pixel
   reaches only 64/255 = 0.25, and grey (0.5) needs 128/255, the budget from which every
   image can be turned into the same grey one. The check rests on an expectation instead:
   moving every pixel by up to a quarter of its range is far beyond what a model trained
   for a small budget (such as 8/255) resists, so a working attack breaks nearly every
   image; high accuracy there points to a failing attack (a masked gradient), not to a
   robust model.
3. **The attack has converged**: doubling the steps and adding restarts changes accuracy by
   no more than noise.
4. **White-box beats transfer**: adversarial images crafted on another model (black-box for
   this one) do not fool it more often than its own gradients do.
5. **Gradients are informative**: the input gradient is finite and not zero.

Accuracies are compared on the same images (paired), so ``tolerance`` (2 points by default)
only has to absorb the randomness of the attacks' random starts.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from helpers import attacks
from helpers.evaluation import accuracy, robust_accuracy
from helpers.lab.checks import check_epsilon, check_images, check_labels
from helpers.models import logits_of


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one sanity check.

    Attributes:
        name: What was checked.
        passed: Whether the evaluation looks sound on this count.
        detail: The numbers behind the verdict.
    """

    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'pass' if self.passed else 'FAIL'}] {self.name}: {self.detail}"


def _robust(
    model,
    attack_model,
    images,
    labels,
    *,
    epsilon,
    num_steps=20,
    restarts=1,
    step_size=None,
    seed=0,
):
    """Accuracy of ``model`` on PGD images computed on ``attack_model`` (all steps run)."""
    kwargs = dict(
        epsilon=epsilon, num_steps=num_steps, restarts=restarts, step_size=step_size, seed=seed
    )
    if attack_model is None:
        return robust_accuracy(model, images, labels, early_stop=False, progress=False, **kwargs)
    adversarial = attacks.pgd(attack_model, images, labels, **kwargs)
    return accuracy(model, adversarial, labels)


def iterative_beats_single_step(
    model,
    images,
    labels,
    *,
    epsilon,
    attack_model=None,
    step_size=None,
    num_steps=20,
    tolerance=0.02,
    seed=0,
    base=None,
) -> CheckResult:
    """Check 1: PGD's accuracy is at most FGSM's (plus ``tolerance``).

    Args:
        base: The accuracy after the base attack (PGD-``num_steps`` at ``epsilon``, seeded
            with ``seed``) when already measured; ``None`` runs it.

    Returns:
        The :class:`CheckResult`.
    """
    source = attack_model or model
    single = accuracy(model, attacks.fgsm(source, images, labels, epsilon), labels)
    base_attack = dict(epsilon=epsilon, num_steps=num_steps, step_size=step_size, seed=seed)
    iterative = (
        base if base is not None else _robust(model, attack_model, images, labels, **base_attack)
    )
    return CheckResult(
        "iterative attack beats single-step",
        iterative <= single + tolerance,
        f"PGD-{num_steps} {iterative:.1%} vs FGSM {single:.1%}",
    )


def accuracy_falls_with_epsilon(
    model,
    images,
    labels,
    *,
    epsilon,
    attack_model=None,
    step_size=None,
    num_steps=20,
    large_epsilon=64 / 255,
    floor=0.05,
    tolerance=0.02,
    seed=0,
    base=None,
) -> CheckResult:
    """Check 2: accuracy does not rise with epsilon and is at most ``floor`` at ``large_epsilon``.

    At ``large_epsilon`` (64/255 by default) a working attack is expected, not guaranteed, to
    break nearly every image: the ball does not contain every image (grey needs 128/255), but
    it is far larger than the budgets a model is trained for (see the module docstring).

    Args:
        base: The accuracy after the base attack (PGD-``num_steps`` at ``epsilon``, seeded
            with ``seed``) when already measured; ``None`` runs it.

    Returns:
        The :class:`CheckResult`.
    """
    budgets = [0.0, epsilon / 2, epsilon, 2 * epsilon, large_epsilon]
    scale = None if step_size is None else step_size / epsilon
    values = [
        base
        if base is not None and budget == epsilon
        else _robust(
            model,
            attack_model,
            images,
            labels,
            epsilon=budget,
            num_steps=num_steps,
            step_size=None if scale is None or budget == 0 else scale * budget,
            seed=seed,
        )
        for budget in budgets
    ]
    monotone = all(
        later <= earlier + tolerance for earlier, later in zip(values, values[1:], strict=False)
    )
    passed = monotone and values[-1] <= floor
    curve = ", ".join(
        f"{budget * 255:.0f}/255: {value:.1%}"
        for budget, value in zip(budgets, values, strict=True)
    )
    return CheckResult(
        "accuracy falls to ~0 as epsilon grows",
        passed,
        f"{curve} (needs non-increasing and <= {floor:.0%} at the largest)",
    )


def attack_has_converged(
    model,
    images,
    labels,
    *,
    epsilon,
    attack_model=None,
    step_size=None,
    num_steps=20,
    tolerance=0.02,
    seed=0,
    base=None,
) -> CheckResult:
    """Check 3: doubling the steps and using 3 restarts lowers accuracy by at most ``tolerance``.

    Args:
        base: The accuracy after the base attack (PGD-``num_steps`` at ``epsilon``, seeded
            with ``seed``) when already measured; ``None`` runs it.

    Returns:
        The :class:`CheckResult`.
    """
    base_attack = dict(epsilon=epsilon, num_steps=num_steps, step_size=step_size, seed=seed)
    if base is None:
        base = _robust(model, attack_model, images, labels, **base_attack)
    stronger = _robust(
        model,
        attack_model,
        images,
        labels,
        epsilon=epsilon,
        num_steps=2 * num_steps,
        restarts=3,
        step_size=step_size,
        seed=seed + 1,
    )
    return CheckResult(
        "more steps and restarts change nothing",
        base - stronger <= tolerance,
        f"PGD-{num_steps} {base:.1%} vs PGD-{2 * num_steps} x3 restarts {stronger:.1%}",
    )


def white_box_beats_transfer(
    model,
    images,
    labels,
    *,
    epsilon,
    transfer_model,
    attack_model=None,
    step_size=None,
    num_steps=20,
    tolerance=0.02,
    seed=0,
    base=None,
) -> CheckResult:
    """Check 4: images crafted on ``transfer_model`` fool ``model`` no more than its own attack.

    Args:
        base: The accuracy after the base attack (PGD-``num_steps`` at ``epsilon``, seeded
            with ``seed``) when already measured; ``None`` runs it.

    Returns:
        The :class:`CheckResult`.
    """
    base_attack = dict(epsilon=epsilon, num_steps=num_steps, step_size=step_size, seed=seed)
    white_box = (
        base if base is not None else _robust(model, attack_model, images, labels, **base_attack)
    )
    transferred = attacks.pgd(
        transfer_model, images, labels, epsilon, num_steps=num_steps, seed=seed
    )
    transfer = accuracy(model, transferred, labels)
    return CheckResult(
        "white-box attack beats transfer",
        white_box <= transfer + tolerance,
        f"white-box {white_box:.1%} vs transfer from {transfer_model.name} {transfer:.1%}",
    )


def gradients_are_informative(
    model, images, labels, *, attack_model=None, max_zero_share=0.05
) -> CheckResult:
    """Check 5: input gradients are finite and at most ``max_zero_share`` of them are zero.

    Returns:
        The :class:`CheckResult`.
    """
    _, gradient, _ = attacks.loss_and_gradient(
        logits_of(attack_model or model), tf.constant(images), tf.constant(labels)
    )
    gradient = gradient.numpy().reshape(len(images), -1)
    finite = bool(np.isfinite(gradient).all())
    zero_share = float(np.mean(np.abs(gradient).max(axis=1) == 0))
    return CheckResult(
        "gradients are finite and non-zero",
        finite and zero_share <= max_zero_share,
        f"{zero_share:.1%} of examples have a zero gradient"
        + ("" if finite else "; some gradients are NaN or infinite"),
    )


def run_sanity_checks(
    model: keras.Model,
    images,
    labels,
    *,
    epsilon: float,
    transfer_model: keras.Model | None = None,
    attack_model: keras.Model | None = None,
    step_size: float | None = None,
    num_steps: int = 20,
    tolerance: float = 0.02,
    seed: int = 0,
) -> list[CheckResult]:
    """Runs every check on one model and returns the results (print them one per line).

    Args:
        model: The model as a user meets it (every prediction is made with it).
        images: float32 (N, H, W, C) in [0, 1]; a few hundred images are enough.
        labels: Integer class ids.
        epsilon: The budget under evaluation, on the [0, 1] pixel scale.
        transfer_model: Another model to craft transfer attacks on (check 4 is skipped
            when ``None``).
        attack_model: The model the attacks differentiate, when it differs from ``model``
            (a BPDA or EOT version of a defended model).
        step_size: PGD's step (default: ``helpers.attacks.default_step_size``); a wrong one
            is exactly what checks 1 and 3 catch.
        num_steps: PGD steps of the base attack.
        tolerance: Accuracy difference the checks accept as noise.
        seed: Seeds the random starts.

    Returns:
        One :class:`CheckResult` per check, in the order of the module docstring.

    Raises:
        TypeError, ValueError: For malformed images, labels or epsilon.
    """
    images = check_images(images)
    labels = check_labels(labels, len(images), model.output_shape[-1])
    epsilon = check_epsilon(epsilon, allow_zero=False)
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}.")
    # Checks 1 to 4 all compare against the same base attack: run it once.
    base_attack = dict(epsilon=epsilon, num_steps=num_steps, step_size=step_size, seed=seed)
    base = _robust(model, attack_model, images, labels, **base_attack)
    common = dict(
        epsilon=epsilon,
        attack_model=attack_model,
        step_size=step_size,
        num_steps=num_steps,
        tolerance=tolerance,
        seed=seed,
        base=base,
    )
    results = [
        iterative_beats_single_step(model, images, labels, **common),
        accuracy_falls_with_epsilon(model, images, labels, **common),
        attack_has_converged(model, images, labels, **common),
    ]
    if transfer_model is not None:
        results.append(
            white_box_beats_transfer(model, images, labels, transfer_model=transfer_model, **common)
        )
    results.append(gradients_are_informative(model, images, labels, attack_model=attack_model))
    return results
