"""The sanity checks pass on a sound evaluation and each one fails on a broken one."""

from __future__ import annotations

import pytest

from helpers import defenses, sanity_checks
from helpers.sanity_checks import run_sanity_checks

NAMES = ["iterative", "epsilon", "converged", "transfer", "gradients"]


def _verdicts(results):
    assert len(results) == len(NAMES)
    return dict(zip(NAMES, (result.passed for result in results), strict=True))


@pytest.fixture(scope="module")
def sample(gtsrb_sample):
    return gtsrb_sample.test[0][:100], gtsrb_sample.test[1][:100]


@pytest.fixture(scope="module")
def evaluation_sample(gtsrb_sample):
    """As many images as notebook 07's sanity checks use (its SANITY_SAMPLES)."""
    return gtsrb_sample.test[0][:200], gtsrb_sample.test[1][:200]


@pytest.mark.slow
def test_a_sound_evaluation_of_the_robust_model_passes_every_check(
    shipped_robust_model, shipped_standard_model, evaluation_sample
):
    # The lab's evaluation budget (PGD-20, as in the results table) on notebook 07's sample
    # size; on 100 images each image is a whole point and a shorter attack is rightly
    # flagged (models/README.md, "What the slow tests were calibrated on").
    results = run_sanity_checks(
        shipped_robust_model,
        *evaluation_sample,
        epsilon=8 / 255,
        num_steps=20,
        transfer_model=shipped_standard_model,
    )
    assert all(_verdicts(results).values()), "\n".join(map(str, results))


@pytest.mark.slow
def test_a_masked_gradient_fails_the_epsilon_transfer_and_gradient_checks(
    shipped_standard_model, shipped_robust_model, sample
):
    # An 8-bit "defence" changes no prediction but hides every gradient behind a stop.
    masked = defenses.defended_model(
        shipped_standard_model, defenses.BitDepthReduction(8), name="masked"
    )
    results = run_sanity_checks(
        masked, *sample, epsilon=8 / 255, num_steps=10, transfer_model=shipped_robust_model
    )
    verdicts = _verdicts(results)
    assert not verdicts["epsilon"] and not verdicts["transfer"] and not verdicts["gradients"], (
        verdicts
    )


@pytest.mark.slow
def test_a_too_small_step_fails_the_iterative_and_convergence_checks(
    shipped_robust_model, shipped_standard_model, sample
):
    results = run_sanity_checks(
        shipped_robust_model,
        *sample,
        epsilon=8 / 255,
        num_steps=10,
        step_size=8 / 255 / 100,
        transfer_model=shipped_standard_model,
    )
    verdicts = _verdicts(results)
    assert not verdicts["iterative"] and not verdicts["converged"], verdicts


def test_bad_arguments_get_clear_errors(small_model, random_batch):
    images, labels = random_batch
    with pytest.raises(ValueError, match="epsilon"):
        run_sanity_checks(small_model, images, labels, epsilon=0.0)
    with pytest.raises(ValueError, match="tolerance"):
        run_sanity_checks(small_model, images, labels, epsilon=0.03, tolerance=1.5)


def test_sharing_the_base_attack_changes_no_number(
    shipped_robust_model, shipped_standard_model, gtsrb_sample
):
    # run_sanity_checks runs the base PGD once for checks 1 to 4; each check run on its own
    # measures it itself. The printed numbers must not differ.
    images, labels = gtsrb_sample.test[0][:40], gtsrb_sample.test[1][:40]
    settings = dict(epsilon=8 / 255, num_steps=3, tolerance=0.02, seed=4)
    together = run_sanity_checks(
        shipped_robust_model, images, labels, transfer_model=shipped_standard_model, **settings
    )
    alone = [
        sanity_checks.iterative_beats_single_step(shipped_robust_model, images, labels, **settings),
        sanity_checks.accuracy_falls_with_epsilon(shipped_robust_model, images, labels, **settings),
        sanity_checks.attack_has_converged(shipped_robust_model, images, labels, **settings),
        sanity_checks.white_box_beats_transfer(
            shipped_robust_model,
            images,
            labels,
            transfer_model=shipped_standard_model,
            **settings,
        ),
    ]
    assert [str(result) for result in together[:4]] == [str(result) for result in alone]


def test_the_base_attack_runs_once_for_all_checks(small_model, random_batch, monkeypatch):
    calls = []
    measure = sanity_checks._robust

    def counting(*args, **kwargs):
        calls.append((kwargs["epsilon"], kwargs["num_steps"], kwargs.get("restarts", 1)))
        return measure(*args, **kwargs)

    monkeypatch.setattr(sanity_checks, "_robust", counting)
    run_sanity_checks(
        small_model, *random_batch, epsilon=0.03, num_steps=2, transfer_model=small_model
    )
    assert calls.count((0.03, 2, 1)) == 1, calls
