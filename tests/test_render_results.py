"""``tools/render_results.py``: the README's results table written from ``results/gtsrb.json``."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "render_results", ROOT / "tools" / "render_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render_results = _load_tool()

RESULTS = {
    "robustness": {
        "samples": 12630,
        "attack": "PGD-20 with 3 restarts",
        "epsilons": ["4/255", "8/255", "16/255"],
        "models": {
            "gtsrb_standard": {
                "label": "standard training",
                "clean": 0.9895,
                "robust": {"4/255": 0.3125, "8/255": 0.0415, "16/255": 0.0},
            },
            "gtsrb_robust": {
                "label": "N-FGSM training",
                "clean": 0.95,
                "robust": {"4/255": 0.8, "8/255": 0.6527},  # 16/255 not measured
            },
        },
        "profile": "default",
        "measured_on": "2026-11-23",
    },
    "uncertainty": {
        "ece": {"standard": 0.0213, "temperature_scaled": 0.0081},
        "bins": [0.1, 0.2],  # lists are not shown
        "profile": "default",
        "measured_on": "2026-11-24",
    },
}

README = """# Lab

Intro.

## Results

<!-- results:start -->
An interim table, written by hand.
<!-- results:end -->

## Next section
"""


@pytest.fixture
def files(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    results = tmp_path / "results" / "gtsrb.json"
    results.parent.mkdir()
    results.write_text(json.dumps(RESULTS))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    return results, readme


def _run(files, *options) -> int:
    results, readme = files
    return render_results.main(["--results", str(results), "--readme", str(readme), *options])


def test_renders_the_table_between_the_markers(files):
    assert _run(files) == 0
    text = files[1].read_text()
    before, rest = text.split("<!-- results:start -->\n")
    block, after = rest.split("\n<!-- results:end -->")
    assert before == README.split("<!-- results:start -->")[0]
    assert after == "\n\n## Next section\n"
    assert "interim" not in block
    assert "12,630 GTSRB test images" in block and "PGD-20 with 3 restarts" in block
    assert "measured on 2026-11-23 by `make tutorial`" in block
    rows = [line for line in block.split("\n") if line.startswith("|")]
    assert rows[:4] == [
        "| model | clean | 4/255 | 8/255 | 16/255 |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| standard training (`gtsrb_standard`) | 98.95% | 31.25% | 4.15% | 0.00% |",
        "| N-FGSM training (`gtsrb_robust`) | 95.00% | 80.00% | 65.27% | – |",
    ]
    assert "| ece / standard | 0.0213 |" in rows
    assert "| ece / temperature_scaled | 0.0081 |" in rows
    assert not any("bins" in row or "profile" in row for row in rows)


def test_rendering_twice_changes_nothing(files):
    assert _run(files) == 0
    first = files[1].read_text()
    assert _run(files) == 0
    assert _run(files, "--check") == 0
    assert files[1].read_text() == first


def test_check_detects_a_stale_readme_and_writes_nothing(files, capsys):
    assert _run(files, "--check") == 1
    assert files[1].read_text() == README
    assert "out of date" in capsys.readouterr().err
    assert _run(files) == 0
    results = json.loads(files[0].read_text())
    results["robustness"]["models"]["gtsrb_robust"]["clean"] = 0.96  # a new measurement
    files[0].write_text(json.dumps(results))
    assert _run(files, "--check") == 1


def test_missing_results_leave_the_readme_alone(files, capsys):
    files[0].unlink()
    assert _run(files) == 0
    assert _run(files, "--check") == 0
    assert files[1].read_text() == README
    assert "does not exist yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["robustness"]["models"]["gtsrb_standard"].update(clean=98.95), "between 0"),
        (lambda r: r["robustness"].pop("epsilons"), "needs samples"),
        (lambda r: r.pop("robustness"), "no 'robustness' section"),
    ],
)
def test_bad_results_are_clear_errors(files, capsys, change, message):
    results = json.loads(json.dumps(RESULTS))
    change(results)
    files[0].write_text(json.dumps(results))
    assert _run(files) == 2
    assert message in capsys.readouterr().err
    assert files[1].read_text() == README


def test_readme_needs_both_markers(files, capsys):
    files[1].write_text(README.replace("<!-- results:end -->", ""))
    assert _run(files) == 2
    assert "results:end" in capsys.readouterr().err


def test_smoke_profile_results_say_so():
    results = json.loads(json.dumps(RESULTS))
    results["robustness"]["profile"] = "smoke"
    assert "smoke profile (not the lab's results)" in render_results.render(results)


def test_the_readme_matches_the_committed_results():
    if not render_results.RESULTS_PATH.exists():
        pytest.skip("results/gtsrb.json is not written yet (notebook 07, make tutorial)")
    assert render_results.main(["--check"]) == 0, "run `python tools/render_results.py`"


def test_the_readme_has_the_markers():
    text = render_results.README_PATH.read_text(encoding="utf-8")
    assert text.count(render_results.START_MARKER) == 1
    assert text.count(render_results.END_MARKER) == 1


def _with_model_files(model_files: dict) -> dict:
    results = json.loads(json.dumps(RESULTS))
    results["robustness"]["model_files"] = model_files
    return results


def test_a_table_measured_with_replaced_models_says_so():
    results = _with_model_files({"gtsrb_standard": "aaaa", "gtsrb_robust": "bbbb"})
    current = {"gtsrb_standard": "aaaa", "gtsrb_robust": "cccc"}
    text = render_results.render(results, current_model_files=current)
    note = next(line for line in text.splitlines() if line.startswith("**Out of date:**"))
    assert "`gtsrb_robust`" in note and "`gtsrb_standard`" not in note
    assert "--only 07" in note
    assert text.index(note) < text.index("| model | clean |")


def test_a_table_of_the_shipped_models_or_of_unknown_ones_has_no_warning():
    current = {"gtsrb_standard": "aaaa", "gtsrb_robust": "bbbb"}
    same = render_results.render(_with_model_files(dict(current)), current_model_files=current)
    unknown = render_results.render(RESULTS, current_model_files=current)  # no fingerprints
    assert "Out of date" not in same and "Out of date" not in unknown


def test_a_model_file_that_is_gone_counts_as_changed():
    section = {"model_files": {"gtsrb_standard": "aaaa", "old_model": "dddd"}}
    assert render_results.changed_models(section, {"gtsrb_standard": "aaaa"}) == ["old_model"]


def test_fingerprints_are_not_shown_as_uncertainty_settings():
    results = json.loads(json.dumps(RESULTS))
    results["uncertainty"]["model_files"] = {"gtsrb_standard": "aaaa"}
    text = render_results.render(results, current_model_files={"gtsrb_standard": "aaaa"})
    assert "aaaa" not in text


def test_another_dataset_gets_its_own_section_after_gtsrbs(files):
    results, readme = files
    cifar = results.with_name("cifar10.json")
    cifar.write_text(json.dumps(RESULTS))
    options = ["--dataset", "cifar10", "--results", str(cifar), "--readme", str(readme)]
    assert render_results.main(options) == 0
    text = readme.read_text()
    gtsrb_block = "<!-- results:start -->\nAn interim table, written by hand.\n<!-- results:end -->"
    assert gtsrb_block in text  # GTSRB's table is left alone
    after_gtsrb = text.split(gtsrb_block)[1]
    assert after_gtsrb.startswith("\n\n### CIFAR-10\n\n<!-- results:cifar10:start -->\n")
    assert "12,630 CIFAR-10 test images" in after_gtsrb
    assert after_gtsrb.endswith("<!-- results:cifar10:end -->\n\n## Next section\n")
    assert render_results.main([*options, "--check"]) == 0  # the second run changes nothing


def test_a_cifar10_table_ignores_replaced_gtsrb_models():
    section = {**RESULTS["robustness"], "model_files": {"gtsrb_standard": "old"}}
    rendered = render_results.render({"robustness": section}, "cifar10", {"gtsrb_standard": "new"})
    assert "Out of date" not in rendered
    assert "Out of date" in render_results.render(
        {"robustness": section}, "gtsrb", {"gtsrb_standard": "new"}
    )
