"""``helpers.lab.outputs``: results files stamped with the model files they were measured with."""

from __future__ import annotations

import hashlib
import json
import types

import pytest

from helpers.lab import outputs

DEFAULT = types.SimpleNamespace(name="default")
SMOKE = types.SimpleNamespace(name="smoke")


def test_model_file_digests_fingerprint_shipped_files_only(tmp_path):
    (tmp_path / "b_model.weights.h5").write_bytes(b"weights of b")
    (tmp_path / "a_model.weights.h5").write_bytes(b"weights of a")
    (tmp_path / "a_model.history.json").write_text("{}")
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "c_model.weights.h5").write_bytes(b"a stand-in")
    digests = outputs.model_file_digests(tmp_path)
    assert list(digests) == ["a_model", "b_model"]
    assert digests["a_model"] == hashlib.sha256(b"weights of a").hexdigest()[:16]
    assert digests["a_model"] != digests["b_model"]


def test_model_file_digests_follow_a_changed_file(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"first")
    before = outputs.model_file_digests(tmp_path)
    path.write_bytes(b"second")
    assert outputs.model_file_digests(tmp_path) != before
    assert outputs.model_file_digests(tmp_path / "missing") == {}


@pytest.fixture
def outputs_in(tmp_path, monkeypatch):
    """Points the outputs at a temporary repository with one shipped model."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gtsrb_standard.weights.h5").write_bytes(b"weights")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(outputs, "MODELS_DIR", tmp_path / "models")
    return tmp_path


def test_record_results_stamps_sections_and_keeps_the_others(outputs_in):
    outputs.record_results("gtsrb", "robustness", {"clean": 0.99}, DEFAULT)
    path = outputs.record_results("gtsrb", "uncertainty", {"ece": 0.02}, DEFAULT)
    assert path == outputs_in / "results" / "gtsrb.json"
    results = json.loads(path.read_text())
    assert set(results) == {"robustness", "uncertainty"}
    section = results["robustness"]
    assert section["clean"] == 0.99 and section["profile"] == "default"
    expected = hashlib.sha256(b"weights").hexdigest()[:16]
    assert section["model_files"] == {"gtsrb_standard": expected}
    assert not list(path.parent.glob("*.part"))  # the temporary file was renamed


def test_smoke_results_never_touch_the_real_file(outputs_in):
    path = outputs.record_results("gtsrb", "robustness", {"clean": 0.5}, SMOKE)
    assert path == outputs_in / "executed" / "smoke" / "results" / "gtsrb.json"
    assert not (outputs_in / "results").exists()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (("gtsrb", "robustness", [0.99]), TypeError, "values must be a dict"),
        (("gtsrb", "", {"clean": 0.99}), ValueError, "section must be a non-empty string"),
        (("gtsrb", "robustness", {"clean": object()}), TypeError, "JSON cannot store"),
        (("../gtsrb", "robustness", {"clean": 0.99}), ValueError, "plain name"),
    ],
)
def test_record_results_bad_input_is_a_clear_error(outputs_in, arguments, error, message):
    with pytest.raises(error, match=message):
        outputs.record_results(*arguments, DEFAULT)


def test_a_corrupt_results_file_is_a_clear_error(outputs_in):
    path = outputs_in / "results" / "gtsrb.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        outputs.load_results("gtsrb", DEFAULT)
