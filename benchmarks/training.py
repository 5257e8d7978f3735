"""Training throughput of the study's CNN on GTSRB: standard, XLA, bf16, and each
adversarial-training method, as ratios to a standard training epoch.

Every variant trains the same model (``build_cnn(43)``) on the same 5,120 GTSRB training
images at batch 128 with the lab's augmentation, one epoch after a warm-up epoch; the median
of three timed epochs is reported. Targets (issue 6): FGSM-RS at most 1.6x and PGD-7 at
most 4.5x a standard epoch.

Usage: ``ADVLAB_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.training``
"""

from __future__ import annotations

import keras

from benchmarks.common import time_call
from helpers.adversarial_training import AdversarialTrainer
from helpers.data import load_dataset
from helpers.models import build_cnn
from helpers.training import TrainingConfig, augmentation, compile_model, make_pipeline

BATCH_SIZE = 128
STEPS = 40
EPSILON = 8 / 255


def measure(dataset, *, method: str | None = None, num_steps: int = 7, jit_compile: bool = False,
            policy: str = "float32") -> float:
    """Returns training images/s for one variant."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_cnn(dataset.num_classes)
    trainer = model if method is None else AdversarialTrainer(
        model, method=method, epsilon=EPSILON, num_steps=num_steps)
    compile_model(trainer, TrainingConfig(), steps_per_epoch=STEPS)
    trainer.jit_compile = jit_compile
    images, labels = dataset.train
    count = BATCH_SIZE * STEPS
    pipeline = make_pipeline(images[:count], labels[:count], dataset.num_classes,
                             batch_size=BATCH_SIZE, augment=augmentation(dataset.name), shuffle_seed=0)
    seconds = time_call(lambda: trainer.fit(pipeline, epochs=1, verbose=0, shuffle=False), repeats=3)
    keras.mixed_precision.set_global_policy("float32")
    return count / seconds


def main() -> None:
    """Measures each variant and prints a table of images/s, epoch time and ratio."""
    dataset = load_dataset("gtsrb")
    train_size = len(dataset.train[1])
    variants = [
        ("standard (float32, no XLA)", {}),
        ("standard, jit_compile=True", {"jit_compile": True}),
        ("standard, mixed_bfloat16", {"policy": "mixed_bfloat16"}),
        ("adversarial: fgsm", {"method": "fgsm"}),
        ("adversarial: fgsm_rs", {"method": "fgsm_rs"}),
        ("adversarial: n_fgsm", {"method": "n_fgsm"}),
        ("adversarial: pgd, 7 steps", {"method": "pgd", "num_steps": 7}),
    ]
    print(f"{'variant':<30}{'images/s':>10}{'epoch (s)':>11}{'x standard':>12}")
    baseline = None
    for name, settings in variants:
        rate = measure(dataset, **settings)
        baseline = baseline or rate
        print(f"{name:<30}{rate:>10.0f}{train_size / rate:>11.1f}{baseline / rate:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
