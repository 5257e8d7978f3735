"""Training throughput of the study's CNN on GTSRB: standard, XLA, bf16, and each
adversarial-training method, as ratios to a standard training epoch.

Every variant trains the same model (``build_cnn(43)``) on the same 5,120 GTSRB training
images at batch 128 with the lab's augmentation. All variants are built and warmed up
first (one untimed epoch each, which includes tracing); then the timed epochs are
*interleaved*: each round times one epoch of every variant, standard first, and each
variant's ratio is taken against the standard epoch of the same round. The median over the
rounds is reported, with every round's ratio and the ratio of the fastest epochs (other
work on the machine only ever slows an epoch down, so the fastest one is the least
disturbed). A machine's speed can drift by up to a factor of two over minutes
(``benchmarks/README.md``, "Interleaved timing"), so timing all epochs of one variant and
then all of the next would compare variants measured at different speeds; pairing within a
round cancels most of that drift.

Targets (issue 6): FGSM-RS at most 1.6x and PGD-7 at most 4.5x a standard epoch.

Usage: ``ADVLAB_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.training [--rounds N]
[--only TEXT ...]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras

from helpers.adversarial_training import AdversarialTrainer
from helpers.data import load_dataset
from helpers.models import build_cnn
from helpers.training import TrainingConfig, augmentation, compile_model, make_pipeline

BATCH_SIZE = 128
STEPS = 40
EPSILON = 8 / 255

VARIANTS = [
    ("standard (float32, no XLA)", {}),
    ("standard, jit_compile=True", {"jit_compile": True}),
    ("standard, mixed_bfloat16", {"policy": "mixed_bfloat16"}),
    ("adversarial: fgsm", {"method": "fgsm"}),
    ("adversarial: fgsm_rs", {"method": "fgsm_rs"}),
    ("adversarial: n_fgsm", {"method": "n_fgsm"}),
    ("adversarial: pgd, 7 steps", {"method": "pgd", "num_steps": 7}),
]


def build_trainer(
    num_classes: int,
    *,
    method: str | None = None,
    num_steps: int = 7,
    jit_compile: bool = False,
    policy: str = "float32",
) -> keras.Model:
    """Returns a compiled model (or ``AdversarialTrainer``) for one variant.

    Args:
        num_classes: Classes of the dataset.
        method: Adversarial-training method, or ``None`` for standard training.
        num_steps: PGD steps (``method="pgd"`` only).
        jit_compile: Compile the training step with XLA.
        policy: ``build_cnn`` dtype policy (``Recipe.precision``): what a recipe trains in.

    Returns:
        A model ready for ``fit``.
    """
    keras.utils.set_random_seed(0)
    model = build_cnn(num_classes, dtype_policy=policy)
    trainer = (
        model
        if method is None
        else AdversarialTrainer(model, method=method, epsilon=EPSILON, num_steps=num_steps)
    )
    compile_model(trainer, TrainingConfig(), steps_per_epoch=STEPS)
    trainer.jit_compile = jit_compile
    return trainer


def select_variants(texts: list[str] | None) -> list[tuple[str, dict]]:
    """Returns the baseline and the variants whose name contains one of ``texts``.

    Args:
        texts: Parts of variant names, or ``None`` for every variant.

    Returns:
        ``VARIANTS``' entries, the float32 standard baseline first.

    Raises:
        ValueError: If ``texts`` names no variant besides the baseline.
    """
    if texts is None:
        return list(VARIANTS)
    chosen = [variant for variant in VARIANTS[1:] if any(text in variant[0] for text in texts)]
    if not chosen:
        names = ", ".join(repr(name) for name, _ in VARIANTS[1:])
        raise ValueError(f"--only {' '.join(texts)} matches no variant; the variants are {names}.")
    return [VARIANTS[0], *chosen]


def epoch_seconds(trainer: keras.Model, pipeline) -> float:
    """Returns the wall time of one training epoch over ``pipeline``."""
    started = time.perf_counter()
    trainer.fit(pipeline, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - started


def main() -> None:
    """Measures every variant in interleaved rounds and prints images/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed epochs per variant (default 3)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="time only the variants whose name contains one of these texts, for example "
        "--only bfloat16 (the float32 standard variant, the baseline, is always timed)",
    )
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {arguments.rounds}.")
    variants = select_variants(arguments.only)

    dataset = load_dataset("gtsrb")
    train_size = len(dataset.train[1])
    images, labels = dataset.train
    count = BATCH_SIZE * STEPS
    pipeline = make_pipeline(
        images[:count],
        labels[:count],
        dataset.num_classes,
        batch_size=BATCH_SIZE,
        augment=augmentation(dataset.name),
        shuffle_seed=0,
    )
    trainers = [build_trainer(dataset.num_classes, **settings) for _, settings in variants]
    for trainer in trainers:  # warm-up: tracing and first-call costs stay out of the timings
        epoch_seconds(trainer, pipeline)

    seconds = [[] for _ in variants]
    for _ in range(arguments.rounds):
        for index, trainer in enumerate(trainers):
            seconds[index].append(epoch_seconds(trainer, pipeline))

    standard = seconds[0]
    print(f"{arguments.rounds} interleaved rounds of one {count:,}-image epoch per variant")
    print(
        f"{'variant':<30}{'images/s':>10}{'epoch (s)':>11}{'x standard':>12}{'fastest':>9}   per round"
    )
    for (name, _), timings in zip(variants, seconds, strict=True):
        rate = count / statistics.median(timings)
        ratios = [variant / base for variant, base in zip(timings, standard, strict=True)]
        per_round = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"{name:<30}{rate:>10.0f}{train_size / rate:>11.1f}"
            f"{statistics.median(ratios):>12.2f}{min(timings) / min(standard):>9.2f}   {per_round}",
            flush=True,
        )


if __name__ == "__main__":
    main()
