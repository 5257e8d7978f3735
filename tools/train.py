"""Trains a recipe: a shipped model, or a variant of it as a candidate.

Usage (from the repository root, with the lab's environment)::

    # A shipped model, exactly as its recipe says: models/<name>.weights.h5 and its record;
    # reports validation and test accuracy, and PGD-20 with restarts on both.
    ADVLAB_DATA_DIR=../shared/data .venv/bin/python tools/train.py gtsrb_robust

    # The same, into another folder (a reproduction that does not replace the shipped file):
    .venv/bin/python tools/train.py gtsrb_robust --models-dir models/candidates/reproduction

    # A variant, to choose hyper-parameters on validation data only (models/candidates/,
    # ignored by git; the test split is kept for the model that is shipped):
    .venv/bin/python tools/train.py gtsrb_robust --candidate ema --set epochs=20 \\
        --set weight_averaging=0.999 --set keep_best_epoch=False

``--evaluate-only`` measures the existing file again (for a candidate, give the same
``--set``). ``--worst-case-images N`` adds the full worst case (PGD-20 x3, APGD-CE, APGD-T,
Square) on the first N validation images, at the recipe's epsilon and at half of it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import pathlib
import time

from helpers import models
from helpers.data import load_dataset
from helpers.evaluation import accuracy, robust_accuracy
from helpers.lab.recipes import (
    RECIPES,
    Recipe,
    build_model,
    load_or_train,
    save_training_record,
    train,
)
from helpers.worst_case import worst_case_robustness

CANDIDATES_DIR = models.MODELS_DIR / "candidates"
DEFAULT_EPSILON = 8 / 255  # for standard models, which have no training epsilon


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Returns ``recipe`` with ``field=value`` overrides applied to it or to its config.

    Args:
        recipe: The recipe to start from.
        overrides: Strings such as ``"width=48"``, ``"epochs=20"`` or
            ``"adversarial.method='pgd'"``; values are Python literals.

    Returns:
        The changed recipe.

    Raises:
        ValueError: For a malformed override or an unknown field.
    """
    recipe_fields = {field.name for field in dataclasses.fields(recipe)}
    config_fields = {field.name for field in dataclasses.fields(recipe.config)}
    for override in overrides:
        name, separator, text = override.partition("=")
        if not separator:
            raise ValueError(f"Overrides look like name=value, got {override!r}.")
        value = ast.literal_eval(text)
        if name.startswith("adversarial.") and recipe.adversarial is not None:
            field = name.removeprefix("adversarial.")
            if field not in {item.name for item in dataclasses.fields(recipe.adversarial)}:
                raise ValueError(f"Unknown adversarial-training field {field!r}.")
            recipe = dataclasses.replace(
                recipe, adversarial=dataclasses.replace(recipe.adversarial, **{field: value})
            )
        elif name in recipe_fields - {"config", "adversarial"}:
            recipe = dataclasses.replace(recipe, **{name: value})
        elif name in config_fields:
            recipe = dataclasses.replace(
                recipe, config=dataclasses.replace(recipe.config, **{name: value})
            )
        else:
            raise ValueError(
                f"Unknown field {name!r}; expected one of {sorted(recipe_fields | config_fields)}."
            )
    return recipe


def parse_arguments() -> argparse.Namespace:
    """Reads the command line (``--help`` lists every option)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument(
        "--candidate",
        metavar="TAG",
        help="train a variant into models/candidates/<TAG>; reports validation figures only",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a recipe or training-config field (repeatable; needs --candidate)",
    )
    parser.add_argument(
        "--models-dir",
        type=pathlib.Path,
        default=models.MODELS_DIR,
        help="folder of a shipped model's file (default: models/)",
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="measure the existing model file again"
    )
    parser.add_argument("--restarts", type=int, default=3, help="PGD restarts for robust accuracy")
    parser.add_argument(
        "--worst-case-images",
        type=int,
        default=0,
        metavar="N",
        help="also measure the first N validation images under the full worst case: PGD-20 "
        "x3, APGD-CE, APGD-T (9 targets) and Square (1,000 queries), at the recipe's epsilon "
        "and at half of it",
    )
    arguments = parser.parse_args()
    if arguments.set and arguments.candidate is None:
        parser.error(
            "--set makes a variant of the recipe: name it with --candidate TAG (a shipped "
            "model is trained exactly as its recipe says)."
        )
    if arguments.candidate is not None and arguments.models_dir != models.MODELS_DIR:
        parser.error("--models-dir is for shipped models; candidates go to models/candidates/.")
    folder = CANDIDATES_DIR if arguments.candidate else arguments.models_dir
    file_name = arguments.candidate or arguments.name
    if arguments.evaluate_only and not models.weights_path(file_name, folder).exists():
        parser.error(f"--evaluate-only: there is no {file_name}.weights.h5 in {folder}")
    return arguments


def train_candidate(recipe: Recipe, tag: str, dataset, evaluate_only: bool):
    """Trains (or loads) a variant into ``models/candidates/<tag>``; returns the model."""
    path = models.weights_path(tag, CANDIDATES_DIR)
    if evaluate_only:
        evaluated = dataclasses.replace(recipe, precision="float32")
        return models.load_weights(build_model(evaluated, dataset.num_classes), path)
    model = build_model(recipe, dataset.num_classes)
    started = time.perf_counter()
    history = train(model, dataset, recipe.config, recipe.adversarial, verbose=2)
    minutes = (time.perf_counter() - started) / 60
    model = models.float32_copy(model)  # measured as the lab uses it
    print(f"training time: {minutes:.1f} min")
    CANDIDATES_DIR.mkdir(parents=True, exist_ok=True)
    models.save_weights(model, path)
    save_training_record(tag, dataset, recipe, history.history, minutes, CANDIDATES_DIR)
    return model


def report(model, dataset, recipe: Recipe, splits, restarts: int) -> None:
    """Prints clean accuracy and PGD-20 accuracy with restarts on each split."""
    epsilon = recipe.adversarial.epsilon if recipe.adversarial else DEFAULT_EPSILON
    for split in splits:
        images, labels = getattr(dataset, split)
        print(f"{split} accuracy: {accuracy(model, images, labels):.4f} ({len(labels):,} images)")
        started = time.perf_counter()
        robust = robust_accuracy(
            model,
            images,
            labels,
            epsilon=epsilon,
            num_steps=20,
            restarts=restarts,
            seed=0,
            progress=False,
        )
        print(
            f"{split} PGD-20 x{restarts} restarts at {epsilon * 255:.0f}/255: {robust:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )


def report_worst_case(model, dataset, recipe: Recipe, count: int) -> None:
    """Prints the full worst case on the first ``count`` validation images, at two budgets."""
    images, labels = (values[:count] for values in dataset.validation)
    epsilon = recipe.adversarial.epsilon if recipe.adversarial else DEFAULT_EPSILON
    for budget in (epsilon, epsilon / 2):
        started = time.perf_counter()
        result = worst_case_robustness(
            model,
            images,
            labels,
            epsilon=budget,
            num_steps=20,
            restarts=3,
            apgd_steps=100,
            apgd_targets=9,
            square_queries=1000,
            seed=0,
            progress=False,
        )
        stages = ", ".join(
            f"{name} {result[name]:.4f}" for name in ("clean", "pgd", "apgd_ce", "apgd_t", "square")
        )
        print(
            f"validation worst case at {budget * 255:.0f}/255 on {len(labels):,} images: "
            f"{result['worst_case']:.4f} (after each attack: {stages}; "
            f"{time.perf_counter() - started:.0f} s)"
        )


def main() -> None:
    """Trains or loads the model, then prints its figures."""
    arguments = parse_arguments()
    recipe = apply_overrides(RECIPES[arguments.name], arguments.set)
    print(recipe)
    dataset = load_dataset(recipe.dataset, crop_roi=recipe.crop_roi)
    if arguments.candidate:
        model = train_candidate(recipe, arguments.candidate, dataset, arguments.evaluate_only)
        splits = ("validation",)
    else:
        arguments.models_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        model = load_or_train(
            arguments.name,
            dataset=dataset,
            models_dir=arguments.models_dir,
            retrain=not arguments.evaluate_only,
        )
        if not arguments.evaluate_only:
            print(f"training time: {(time.perf_counter() - started) / 60:.1f} min")
        splits = ("validation", "test")
    report(model, dataset, recipe, splits, arguments.restarts)
    if arguments.worst_case_images:
        report_worst_case(model, dataset, recipe, arguments.worst_case_images)


if __name__ == "__main__":
    main()
