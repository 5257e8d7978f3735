"""``helpers.lab.versions``: unsupported TensorFlow or Keras fails at import, with a message."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from helpers.lab import versions

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_release_reads_major_and_minor():
    assert versions.release("2.18.1") == (2, 18)
    assert versions.release("3.10.0rc1") == (3, 10)
    with pytest.raises(ValueError, match="Cannot read a release"):
        versions.release("nightly")


def test_the_installed_pair_is_supported_without_warning(recwarn):
    versions.check_versions()
    assert not [w for w in recwarn if "newer than the lab" in str(w.message)]


@pytest.mark.parametrize(
    ("found", "named"),
    [
        ({"tensorflow": "2.17.1", "keras": "3.8.0"}, "tensorflow 2.17.1 is older than 2.18"),
        ({"tensorflow": "2.18.1", "keras": "3.7.0"}, "keras 3.7.0 is older than 3.8"),
        ({"tensorflow": "2.15.0", "keras": "2.15.0"}, "keras 2.15.0 is older than 3.8"),
        ({"tensorflow": None, "keras": "3.8.0"}, "tensorflow is not installed"),
    ],
)
def test_an_old_or_missing_release_is_refused_with_the_supported_range(found, named):
    with pytest.raises(versions.UnsupportedVersionError) as raised:
        versions.check_versions(found)
    message = str(raised.value)
    assert named in message
    assert "tensorflow 2.18 to 2.21, keras 3.8 to 3.15" in message
    assert isinstance(raised.value, ImportError)


def test_a_newer_release_only_warns():
    with pytest.warns(UserWarning, match="tensorflow 2.22.0 is newer than the lab"):
        versions.check_versions({"tensorflow": "2.22.0", "keras": "3.15.1"})


def test_importing_helpers_checks_the_versions():
    # A fresh interpreter in which the installed Keras looks too old: `import helpers` fails.
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '3.7.0' if name == 'keras' else real(name)\n"
        "import helpers\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "UnsupportedVersionError" in result.stderr
    assert "keras 3.7.0 is older than 3.8" in result.stderr


def _pins(file_name: str) -> dict[str, str]:
    text = (ROOT / file_name).read_text()
    pairs = [line.split("#")[0].strip().split("==") for line in text.splitlines()]
    return {pair[0].lower(): pair[1] for pair in pairs if len(pair) == 2}


def test_the_supported_range_is_what_the_two_environments_pin():
    newest, oldest = _pins("requirements.txt"), _pins("requirements-compat.txt")
    for package, (low, high) in versions.SUPPORTED.items():
        assert versions.release(oldest[package]) == low, f"{package}: requirements-compat.txt"
        assert versions.release(newest[package]) == high, f"{package}: requirements.txt"
