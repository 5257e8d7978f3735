"""Trains a shipped model from its recipe and reports validation and test accuracy.

Usage (from the repository root, with the lab's environment)::

    ADVLAB_DATA_DIR=../shared/data .venv/bin/python tools/train_shipped_model.py gtsrb_standard
    ADVLAB_DATA_DIR=../shared/data .venv/bin/python tools/train_shipped_model.py gtsrb_robust

The weights are written to ``models/<name>.weights.h5`` with its training record next to it; paste
the printed numbers into ``models/README.md``. To reproduce a shipped model without
replacing it, train into another folder: ``--models-dir models/candidates/reproduction``
(``models/candidates/`` is ignored by git). It also reports PGD-20 accuracy (with
restarts, early-stopping evaluation) at the recipe's epsilon, or 8/255 for a standard model. ``--evaluate-only`` skips
training and measures the existing file.
"""

from __future__ import annotations

import argparse
import pathlib
import time

from helpers.data import load_dataset
from helpers.evaluation import accuracy, robust_accuracy
from helpers.lab.recipes import RECIPES, load_or_train
from helpers.models import MODELS_DIR, weights_path

DEFAULT_EPSILON = 8 / 255  # for standard models, which have no training epsilon


def main() -> None:
    """Parses the command line, trains, evaluates and prints the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument(
        "--evaluate-only", action="store_true", help="measure the existing model file"
    )
    parser.add_argument("--restarts", type=int, default=3, help="PGD restarts for robust accuracy")
    parser.add_argument(
        "--models-dir",
        type=pathlib.Path,
        default=MODELS_DIR,
        help="folder of the model file to train or measure (default: models/)",
    )
    arguments = parser.parse_args()
    recipe = RECIPES[arguments.name]
    weights = weights_path(arguments.name, arguments.models_dir)
    if arguments.evaluate_only and not weights.exists():
        parser.error(f"--evaluate-only: there is no {weights.name} in {arguments.models_dir}")
    arguments.models_dir.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(recipe.dataset, crop_roi=recipe.crop_roi)
    started = time.perf_counter()
    model = load_or_train(
        arguments.name,
        dataset=dataset,
        models_dir=arguments.models_dir,
        retrain=not arguments.evaluate_only,
    )
    if not arguments.evaluate_only:
        print(f"training time: {(time.perf_counter() - started) / 60:.1f} min")
    for split in ("validation", "test"):
        images, labels = getattr(dataset, split)
        print(f"{split} accuracy: {accuracy(model, images, labels):.4f} ({len(labels):,} images)")
        epsilon = recipe.adversarial.epsilon if recipe.adversarial else DEFAULT_EPSILON
        started = time.perf_counter()
        robust = robust_accuracy(
            model,
            images,
            labels,
            epsilon=epsilon,
            num_steps=20,
            restarts=arguments.restarts,
            seed=0,
            progress=False,
        )
        print(
            f"{split} PGD-20 x{arguments.restarts} restarts at {epsilon * 255:.0f}/255: {robust:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
