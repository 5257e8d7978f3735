"""Attack speed on the shipped GTSRB model: images/s and cost in gradient passes.

Prints, at batch 256 on the first 2,048 test images:

- images/s of one input-gradient pass (the unit of attack cost), FGSM, PGD-10, PGD-20;
- PGD-k time divided by k gradient passes (target: at most 1.15, i.e. the compiled loop
  adds little over the gradients themselves);
- ``robust_accuracy`` under PGD-20 with early stopping against attacking every correctly
  classified example for all 20 steps (target: at least 3x faster, never a higher figure),
  on ``--evaluation-images`` test images (default 2,048; 0 for the whole test set, the size
  an evaluation actually runs at).

Usage: ``ADVLAB_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.attacks [--evaluation-images N]``
"""

from __future__ import annotations

import argparse
import time

import tensorflow as tf

from benchmarks.common import time_call
from helpers.attacks import fgsm, pgd
from helpers.data import load_dataset
from helpers.evaluation import robust_accuracy
from helpers.lab.recipes import load_trained_model
from helpers.models import logits_model

BATCH_SIZE = 256
DEFAULT_IMAGES = 2048
EPSILON = 8 / 255


def main() -> None:
    """Runs every measurement and prints a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--evaluation-images",
        type=int,
        default=DEFAULT_IMAGES,
        help="test images for the robust_accuracy comparison (0: the whole test set)",
    )
    arguments = parser.parse_args()
    dataset = load_dataset("gtsrb")
    images, labels = dataset.test[0][:DEFAULT_IMAGES], dataset.test[1][:DEFAULT_IMAGES]
    print(f"{len(labels):,} GTSRB test images, batch {BATCH_SIZE}")
    model = load_trained_model("gtsrb_standard")
    logits_network = logits_model(model)

    @tf.function(
        input_signature=[tf.TensorSpec([None, 32, 32, 3]), tf.TensorSpec([None], tf.int64)]
    )
    def gradient_pass(batch, batch_labels):
        with tf.GradientTape() as tape:
            tape.watch(batch)
            logits = logits_network(batch, training=False)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(batch_labels, logits)
        return tape.gradient(loss, batch)

    def all_gradient_passes():
        for start in range(0, len(labels), BATCH_SIZE):
            gradient_pass(
                tf.constant(images[start : start + BATCH_SIZE]),
                tf.constant(labels[start : start + BATCH_SIZE]),
            ).numpy()

    one_pass = time_call(all_gradient_passes)
    print(f"{'measurement':<34}{'images/s':>10}{'gradient passes':>17}")
    print(f"{'one input-gradient pass':<34}{len(labels) / one_pass:>10.0f}{1:>17.2f}")
    fgsm_time = time_call(lambda: fgsm(model, images, labels, EPSILON, batch_size=BATCH_SIZE))
    print(f"{'FGSM':<34}{len(labels) / fgsm_time:>10.0f}{fgsm_time / one_pass:>17.2f}")
    for steps in (10, 20):
        seconds = time_call(
            lambda steps=steps: pgd(
                model, images, labels, EPSILON, num_steps=steps, seed=0, batch_size=BATCH_SIZE
            ),
            repeats=3,
        )
        ratio = seconds / (steps * one_pass)
        print(
            f"{f'PGD-{steps}':<34}{len(labels) / seconds:>10.0f}{seconds / one_pass:>17.2f}"
            f"   ({ratio:.3f} x {steps} passes)"
        )

    count = arguments.evaluation_images or len(dataset.test[1])
    images, labels = dataset.test[0][:count], dataset.test[1][:count]
    settings = {"epsilon": EPSILON, "num_steps": 20, "seed": 0, "progress": False}
    for early_stop in (True, False):  # warm-up: trace both code paths on one batch
        robust_accuracy(
            model, images[:BATCH_SIZE], labels[:BATCH_SIZE], early_stop=early_stop, **settings
        )
    print(f"robust_accuracy on {len(labels):,} test images (after one warm-up call each):")
    started = time.perf_counter()
    early = robust_accuracy(model, images, labels, **settings)
    early_seconds = time.perf_counter() - started
    started = time.perf_counter()
    full = robust_accuracy(model, images, labels, early_stop=False, **settings)
    full_seconds = time.perf_counter() - started
    print(f"robust_accuracy PGD-20, early stop : {early:.4f} in {early_seconds:.1f} s")
    print(f"robust_accuracy PGD-20, all steps  : {full:.4f} in {full_seconds:.1f} s")
    print(f"early-stop speed-up                : {full_seconds / early_seconds:.2f}x")


if __name__ == "__main__":
    main()
