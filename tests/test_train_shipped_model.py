"""Tests for tools/train_shipped_model.py: where it trains and what it refuses."""

from __future__ import annotations

import sys

import pytest

from helpers.models import MODELS_DIR
from tools import train_shipped_model


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

    monkeypatch.setattr(train_shipped_model, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(train_shipped_model, "load_or_train", fake_load_or_train)
    monkeypatch.setattr(train_shipped_model, "accuracy", lambda *args: 0.5)
    monkeypatch.setattr(train_shipped_model, "robust_accuracy", lambda *args, **kwargs: 0.25)
    return calls


def run(monkeypatch, *arguments):
    monkeypatch.setattr(sys, "argv", ["train_shipped_model.py", *arguments])
    train_shipped_model.main()


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
