"""Trains a variant of a shipped recipe and reports its validation accuracy only.

Hyper-parameters are chosen on validation data; the test split is kept for the final
numbers of the model that is shipped (``tools/train_shipped_model.py``). This tool trains
a variant into ``models/candidates/`` (ignored by git) and never evaluates on the test
split. ``--evaluate-only`` measures a trained candidate again (give the same ``--set``);
``--worst-case-images N`` adds the full worst case (PGD, APGD-CE, APGD-T, Square) on the
first N validation images.

Usage (from the repository root, with the lab's environment)::

    ADVLAB_DATA_DIR=../shared/data .venv/bin/python tools/try_recipe.py gtsrb_standard \\
        --set local_contrast=True --set epochs=30
    ADVLAB_DATA_DIR=../shared/data .venv/bin/python tools/try_recipe.py gtsrb_standard \\
        --set precision="'mixed_bfloat16'" --tag std_bf16
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time

from helpers import models
from helpers.data import load_dataset
from helpers.evaluation import accuracy, robust_accuracy, worst_case_robustness
from helpers.lab.recipes import RECIPES, Recipe, build_model, save_training_record
from helpers.training import train_model

CANDIDATES_DIR = models.MODELS_DIR / "candidates"


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


def main() -> None:
    """Parses the command line, trains the variant and prints its validation accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a recipe or training-config field (repeatable)",
    )
    parser.add_argument("--tag", default="candidate", help="file name under models/candidates/")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="measure models/candidates/<tag>.weights.h5 (trained with the same --set) again",
    )
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
    recipe = apply_overrides(RECIPES[arguments.name], arguments.set)
    print(recipe)
    dataset = load_dataset(recipe.dataset, crop_roi=recipe.crop_roi)
    path = models.weights_path(arguments.tag, CANDIDATES_DIR)
    if arguments.evaluate_only:
        evaluated = dataclasses.replace(recipe, precision="float32")
        model = models.load_weights(build_model(evaluated, dataset.num_classes), path)
    else:
        model = build_model(recipe, dataset.num_classes)
        started = time.perf_counter()
        history = train_model(
            model, dataset, recipe.config, adversarial=recipe.adversarial, verbose=2
        )
        minutes = (time.perf_counter() - started) / 60
        model = models.float32_copy(model)  # measured as the lab uses it
        print(f"training time: {minutes:.1f} min")
        models.save_weights(model, path)
        save_training_record(
            arguments.tag, dataset, recipe, history.history, minutes, CANDIDATES_DIR
        )
    images, labels = dataset.validation
    print(f"validation accuracy: {accuracy(model, images, labels):.4f} ({len(labels):,} images)")
    if recipe.adversarial is not None:
        robust = robust_accuracy(
            model,
            images,
            labels,
            epsilon=recipe.adversarial.epsilon,
            num_steps=20,
            restarts=3,
            seed=0,
            progress=False,
        )
        print(
            f"validation PGD-20 x3 restarts at {recipe.adversarial.epsilon * 255:.0f}/255: {robust:.4f}"
        )
    if arguments.worst_case_images:
        epsilon = recipe.adversarial.epsilon if recipe.adversarial else 8 / 255
        count = arguments.worst_case_images
        for budget in (epsilon, epsilon / 2):
            started = time.perf_counter()
            result = worst_case_robustness(
                model,
                images[:count],
                labels[:count],
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
                f"{name} {result[name]:.4f}"
                for name in ("clean", "pgd", "apgd_ce", "apgd_t", "square")
            )
            print(
                f"validation worst case at {budget * 255:.0f}/255 on {count:,} images: "
                f"{result['worst_case']:.4f} (after each attack: {stages}; "
                f"{time.perf_counter() - started:.0f} s)"
            )


if __name__ == "__main__":
    main()
