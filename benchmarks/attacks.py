"""Attack speed on the shipped GTSRB model: images/s and cost in gradient passes.

Prints, at batch 256 on 2,048 test images:

- images/s of one input-gradient pass (the unit of attack cost), FGSM, PGD-10, PGD-20;
- PGD-k time divided by k gradient passes (target: at most 1.15, i.e. the compiled loop
  adds little over the gradients themselves);
- ``robust_accuracy`` under PGD-20 with early stopping against attacking every correctly
  classified example for all 20 steps (target: at least 3x faster, never a higher figure).

Usage: ``ADVLAB_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.attacks``
"""

from __future__ import annotations

import time

import tensorflow as tf

from benchmarks.common import time_call
from helpers.attacks import compiled_attack, fgsm, pgd
from helpers.data import load_dataset
from helpers.evaluation import robust_accuracy
from helpers.models import MODELS_DIR, load_model

BATCH_SIZE = 256
NUM_IMAGES = 2048
EPSILON = 8 / 255


def main() -> None:
    """Runs every measurement and prints a table."""
    dataset = load_dataset("gtsrb")
    images, labels = dataset.test[0][:NUM_IMAGES], dataset.test[1][:NUM_IMAGES]
    model = load_model(MODELS_DIR / "gtsrb_standard.keras", num_classes=43)
    attack = compiled_attack(model)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3]), tf.TensorSpec([None], tf.int64)])
    def gradient_pass(batch, batch_labels):
        with tf.GradientTape() as tape:
            tape.watch(batch)
            logits = attack.logits(batch, training=False)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(batch_labels, logits)
        return tape.gradient(loss, batch)

    def all_gradient_passes():
        for start in range(0, NUM_IMAGES, BATCH_SIZE):
            gradient_pass(tf.constant(images[start : start + BATCH_SIZE]),
                          tf.constant(labels[start : start + BATCH_SIZE])).numpy()

    one_pass = time_call(all_gradient_passes)
    print(f"{'measurement':<34}{'images/s':>10}{'gradient passes':>17}")
    print(f"{'one input-gradient pass':<34}{NUM_IMAGES / one_pass:>10.0f}{1:>17.2f}")
    fgsm_time = time_call(lambda: fgsm(model, images, labels, EPSILON, batch_size=BATCH_SIZE))
    print(f"{'FGSM':<34}{NUM_IMAGES / fgsm_time:>10.0f}{fgsm_time / one_pass:>17.2f}")
    for steps in (10, 20):
        seconds = time_call(
            lambda steps=steps: pgd(model, images, labels, EPSILON, num_steps=steps, seed=0,
                                    batch_size=BATCH_SIZE),
            repeats=3,
        )
        ratio = seconds / (steps * one_pass)
        print(f"{f'PGD-{steps}':<34}{NUM_IMAGES / seconds:>10.0f}{seconds / one_pass:>17.2f}"
              f"   ({ratio:.3f} x {steps} passes)")

    settings = {"epsilon": EPSILON, "num_steps": 20, "seed": 0, "progress": False}
    started = time.perf_counter()
    early = robust_accuracy(model, images, labels, **settings)
    early_seconds = time.perf_counter() - started
    started = time.perf_counter()
    full = robust_accuracy(model, images, labels, early_stop=False, **settings)
    full_seconds = time.perf_counter() - started
    print(f"robust_accuracy PGD-20, early stop : {early:.4f} in {early_seconds:.1f} s")
    print(f"robust_accuracy PGD-20, all steps  : {full:.4f} in {full_seconds:.1f} s")
    print(f"early-stop speed-up                : {full_seconds / early_seconds:.1f}x")


if __name__ == "__main__":
    main()
