"""The TensorFlow and Keras releases the lab supports, checked when ``helpers`` is imported.

Learners run the notebooks on whatever TensorFlow a hosted service ships (Colab installs the
helpers without pins), or on a laptop set up a year ago. The lab is tested on the oldest
supported pair (``make test-compat``) and on the pinned one (``make test``). An older
release fails at import with a message that names what was found and what is supported,
instead of failing later inside Keras; a newer one, not yet tested, only warns.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import warnings

# (oldest, newest tested) per package, as (major, minor). Keep in step with README.md
# ("Supported versions"), requirements.txt (the newest) and requirements-compat.txt (the oldest).
SUPPORTED = {"tensorflow": ((2, 18), (2, 21)), "keras": ((3, 8), (3, 15))}
# Names under which pip installs TensorFlow on some platforms.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly")


class UnsupportedVersionError(ImportError):
    """TensorFlow or Keras is missing, or older than the lab supports."""


def release(version: str) -> tuple[int, int]:
    """Returns ``(major, minor)`` of a version string such as ``"2.18.1"`` or ``"3.10.0rc1"``.

    Args:
        version: A version as packages report it.

    Returns:
        The major and minor release numbers.

    Raises:
        ValueError: If the string does not start with ``major.minor``.
    """
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"Cannot read a release from version {version!r}.")
    return int(match.group(1)), int(match.group(2))


def supported_range(package: str) -> str:
    """Returns the supported releases of a package as text, for example ``"2.18 to 2.21"``."""
    oldest, newest = SUPPORTED[package]
    return f"{oldest[0]}.{oldest[1]} to {newest[0]}.{newest[1]}"


def installed_versions() -> dict[str, str | None]:
    """Returns the installed TensorFlow and Keras versions (``None`` when not installed).

    Reads package metadata only, so nothing is imported.
    """
    found: dict[str, str | None] = {"tensorflow": None, "keras": None}
    for distribution in TENSORFLOW_DISTRIBUTIONS:
        try:
            found["tensorflow"] = importlib.metadata.version(distribution)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        found["keras"] = importlib.metadata.version("keras")
    return found


def check_versions(versions: dict[str, str | None] | None = None) -> None:
    """Refuses TensorFlow or Keras releases older than supported; warns about newer ones.

    Args:
        versions: Package name -> installed version (default: :func:`installed_versions`).

    Raises:
        UnsupportedVersionError: If a package is missing or older than supported. The
            message names the version found, the supported range and how to install it.
    """
    versions = installed_versions() if versions is None else versions
    wanted = ", ".join(f"{name} {supported_range(name)}" for name in SUPPORTED)
    problems, untested = [], []
    for name, (oldest, newest) in SUPPORTED.items():
        version = versions.get(name)
        if version is None:
            problems.append(f"{name} is not installed")
        elif release(version) < oldest:
            problems.append(f"{name} {version} is older than {oldest[0]}.{oldest[1]}")
        elif release(version) > newest:
            untested.append(f"{name} {version}")
    if problems:
        raise UnsupportedVersionError(
            f"The lab supports {wanted}, but {' and '.join(problems)}. Install a supported "
            'release, for example: pip install "tensorflow>=2.18" "keras>=3.8" (on Colab, '
            "then restart the session), or use the lab's own environment: make lab."
        )
    if untested:
        warnings.warn(
            f"{' and '.join(untested)} is newer than the lab has been tested with ({wanted}); "
            "it will probably work. If a notebook fails, install the pinned versions of "
            "requirements.txt.",
            stacklevel=2,
        )
