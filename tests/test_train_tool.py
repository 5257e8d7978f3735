"""Tests for tools/train.py: where it trains, what it reports and what it refuses."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from helpers.data import Dataset
from helpers.models import MODELS_DIR
from tools import train as train_tool


@pytest.fixture
def fake_training(monkeypatch):
    """Replaces data loading, training and evaluation by recorders (no data, no training)."""
    calls = {}

    def fake_load_or_train(name, **kwargs):
        calls["load_or_train"] = (name, kwargs)
        return "model"

    def fake_load_dataset(name, **kwargs):
        calls["load_dataset"] = (name, kwargs)

        class Splits:
            validation = test = ("images", "labels")

        return Splits()

    monkeypatch.setattr(train_tool, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(train_tool, "load_or_train", fake_load_or_train)
    monkeypatch.setattr(train_tool, "accuracy", lambda *args: 0.5)
    monkeypatch.setattr(train_tool, "robust_accuracy", lambda *args, **kwargs: 0.25)
    return calls


def run(monkeypatch, *arguments):
    monkeypatch.setattr(sys, "argv", ["train.py", *arguments])
    train_tool.main()


def test_trains_into_the_shipped_folder_by_default(monkeypatch, fake_training, capsys):
    run(monkeypatch, "gtsrb_standard")
    name, options = fake_training["load_or_train"]
    assert name == "gtsrb_standard"
    assert options["models_dir"] == MODELS_DIR and options["retrain"] is True
    assert fake_training["load_dataset"] == ("gtsrb", {"crop_roi": True})
    printed = capsys.readouterr().out
    assert "test accuracy: 0.5000" in printed and "PGD-20 x3 restarts at 8/255: 0.2500" in printed


def test_a_reproduction_trains_into_another_folder(monkeypatch, fake_training, tmp_path):
    folder = tmp_path / "reproduction"
    run(monkeypatch, "gtsrb_robust", "--models-dir", str(folder))
    _, options = fake_training["load_or_train"]
    assert options["models_dir"] == folder and options["retrain"] is True
    assert folder.is_dir()


def test_evaluate_only_needs_the_model_file(monkeypatch, fake_training, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        run(monkeypatch, "gtsrb_standard", "--evaluate-only", "--models-dir", str(tmp_path))
    assert raised.value.code == 2
    assert "there is no gtsrb_standard.weights.h5 in" in capsys.readouterr().err
    assert "load_dataset" not in fake_training  # refused before any data is read


def test_a_variant_needs_a_candidate_name(monkeypatch, fake_training, capsys):
    with pytest.raises(SystemExit) as raised:
        run(monkeypatch, "gtsrb_robust", "--set", "epochs=3")
    assert raised.value.code == 2
    assert "--candidate TAG" in capsys.readouterr().err
    assert "load_dataset" not in fake_training


def test_a_candidate_is_trained_as_a_variant_and_reported_on_validation_only(
    monkeypatch, fake_training, capsys
):
    trained = {}

    def fake_train_candidate(recipe, tag, dataset, evaluate_only):
        trained.update(recipe=recipe, tag=tag, evaluate_only=evaluate_only)
        return "model"

    monkeypatch.setattr(train_tool, "train_candidate", fake_train_candidate)
    run(monkeypatch, "gtsrb_robust", "--candidate", "short", "--set", "epochs=3")
    assert trained["tag"] == "short" and trained["recipe"].config.epochs == 3
    assert "load_or_train" not in fake_training  # the shipped file is never touched
    printed = capsys.readouterr().out
    assert "validation accuracy: 0.5000" in printed and "test" not in printed


@pytest.mark.slow
def test_a_tiny_candidate_trains_saves_its_record_and_measures_again(monkeypatch, tmp_path, capsys):
    """Trains a width-4 candidate for one epoch, then measures the saved file again."""
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (40, 32, 32, 3)).astype(np.float32)
    labels = np.arange(40) % 4
    split = (images[:4], labels[:4])
    dataset = Dataset("gtsrb", (images, labels), split, split, list("abcd"), cropped=True)
    monkeypatch.setattr(train_tool, "load_dataset", lambda name, **kwargs: dataset)
    monkeypatch.setattr(train_tool, "CANDIDATES_DIR", tmp_path)
    worst_cases = []

    def fake_worst_case(model, images, labels, **settings):
        worst_cases.append((len(labels), settings["epsilon"], settings["restarts"]))
        stages = ("clean", "pgd", "apgd_ce", "apgd_t", "square", "worst_case")
        return dict.fromkeys(stages, 0.5)

    monkeypatch.setattr(train_tool, "worst_case_robustness", fake_worst_case)
    common = ["gtsrb_standard", "--candidate", "tiny", "--set", "width=4"]
    common += ["--set", "epochs=1", "--set", "batch_size=16"]
    run(monkeypatch, *common)
    trained = capsys.readouterr().out
    assert (tmp_path / "tiny.weights.h5").exists()
    record = json.loads((tmp_path / "tiny.history.json").read_text())
    assert record["architecture"]["width"] == 4 and len(record["history"]["loss"]) == 1
    assert "training time:" in trained and "test accuracy" not in trained

    run(monkeypatch, *common, "--evaluate-only", "--worst-case-images", "3")
    measured = capsys.readouterr().out
    assert "training time:" not in measured
    accuracy_line = next(line for line in trained.splitlines() if "validation accuracy" in line)
    assert accuracy_line in measured  # the saved file measures as the trained model did
    assert worst_cases == [(3, 8 / 255, 3), (3, 4 / 255, 3)]
    assert "validation worst case at 8/255 on 3 images: 0.5000" in measured
