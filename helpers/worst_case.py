"""The worst case over a chain of attacks, per example (notebook 07).

One attack's robust accuracy is an upper bound: another attack may break what it could
not. The honest figure is the worst case per example over several different attacks:
PGD with restarts (``helpers.attacks``), APGD on the cross-entropy and, targeted, on the
difference-of-logits ratio (``helpers.apgd``), and the gradient-free Square Attack
(``helpers.square``), which checks that the gradient attacks were not misled. As in
AutoAttack (Croce and Hein 2020), each attack only runs on the examples the earlier ones
could not break.
"""

from __future__ import annotations

import keras
import numpy as np

from helpers.apgd import apgd_ce, apgd_dlr
from helpers.attacks import first_success, pgd
from helpers.evaluation import predict_classes
from helpers.lab.checks import check_images, check_labels
from helpers.square import square_attack


def worst_case_robustness(
    model: keras.Model,
    images,
    labels,
    *,
    epsilon: float,
    attack_model: keras.Model | None = None,
    num_steps: int = 20,
    restarts: int = 3,
    apgd_steps: int = 100,
    apgd_targets: int = 0,
    square_queries: int = 0,
    each_attack_alone: bool = False,
    seed: int | None = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> dict:
    """Clean accuracy, then accuracy under a chain of attacks: the worst case per example.

    An example counts as robust only if it resists every attack of the chain: PGD with
    ``num_steps`` steps and ``restarts`` restarts, APGD-CE, optionally APGD on the targeted
    DLR loss (``apgd_targets`` target classes, AutoAttack's APGD-T) and the gradient-free
    Square Attack. Settings of the later attacks carry the attack's name.

    Args:
        model: The model as a user meets it; every prediction is made with it.
        images: float32 (N, H, W, C) in [0, 1].
        labels: Integer class ids.
        epsilon: L-infinity budget on the [0, 1] pixel scale.
        attack_model: The model whose gradients the attacks follow, when it differs from
            ``model``: a straight-through (BPDA) or expectation-over-transformation (EOT)
            version of a defended model (``helpers.defenses``). Default: ``model``. The
            Square Attack needs no gradient and always queries ``model`` itself.
        num_steps: PGD steps per restart.
        restarts: PGD restarts.
        apgd_steps: Iterations of APGD-CE and of each APGD-T run (0 skips both).
        apgd_targets: Target classes of APGD-T (9 in AutoAttack; 0 skips it).
        square_queries: Queries of the Square Attack per example (0 skips it).
        each_attack_alone: Also run every attack on all correctly classified examples and
            report its own accuracy (costs more: nothing is skipped).
        seed: Seeds the attacks' random starts.
        batch_size: Images per gradient pass.
        progress: Show a progress bar during PGD.

    Returns:
        A dict with ``clean``, the accuracy after each attack of the chain (``pgd``,
        ``apgd_ce``, ``apgd_t``, ``square``: only those that ran), ``worst_case`` (after
        all of them), ``robust`` (a boolean array, True where the example resisted every
        attack) and, with ``each_attack_alone``, ``alone``: attack name -> its own accuracy.

    Raises:
        TypeError, ValueError: For malformed images, labels or settings.
    """
    images = check_images(images)
    labels = check_labels(labels, len(images), model.output_shape[-1])
    if len(labels) == 0:
        raise ValueError("worst_case_robustness needs at least one image.")
    correct = predict_classes(model, images, batch_size=batch_size) == labels
    gradient_model = attack_model or model
    pgd_settings = dict(num_steps=num_steps, restarts=restarts, seed=seed, batch_size=batch_size)

    def pgd_survivors(indices):
        if attack_model is None:
            _, fooled = first_success(
                model, images[indices], labels[indices], epsilon, progress=progress, **pgd_settings
            )
            return ~fooled
        adversarial = pgd(attack_model, images[indices], labels[indices], epsilon, **pgd_settings)
        return predict_classes(model, adversarial, batch_size=batch_size) == labels[indices]

    def survivors_of(attack, attacked_model, **settings):
        def run(indices):
            adversarial = attack(
                attacked_model,
                images[indices],
                labels[indices],
                epsilon,
                seed=seed,
                batch_size=batch_size,
                **settings,
            )
            return predict_classes(model, adversarial, batch_size=batch_size) == labels[indices]

        return run

    chain = [("pgd", pgd_survivors)]
    if apgd_steps:
        chain.append(("apgd_ce", survivors_of(apgd_ce, gradient_model, num_steps=apgd_steps)))
        if apgd_targets:
            apgd_t = survivors_of(
                apgd_dlr, gradient_model, target_classes=apgd_targets, num_steps=apgd_steps
            )
            chain.append(("apgd_t", apgd_t))
    if square_queries:
        chain.append(("square", survivors_of(square_attack, model, num_queries=square_queries)))

    result = {"clean": float(correct.mean())}
    robust = correct.copy()
    for name, survivors in chain:
        indices = np.flatnonzero(robust)
        if len(indices):
            robust[indices] = survivors(indices)
        result[name] = float(robust.mean())
    result["worst_case"] = float(robust.mean())
    result["robust"] = robust
    if each_attack_alone:
        alone = {}
        for name, survivors in chain:
            resisted = correct.copy()
            indices = np.flatnonzero(resisted)
            if len(indices):
                resisted[indices] = survivors(indices)
            alone[name] = float(resisted.mean())
        result["alone"] = alone
    return result
