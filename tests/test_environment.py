"""The three descriptions of the environment agree.

``requirements.txt`` (the lab) and ``requirements-dev.txt`` (adds test tools, includes the
first with ``-r``) pin every package with ``==``; ``environment.yml`` pins exactly the same
versions for conda users; ``constraints.txt`` (the full ``pip freeze``) has each of them at
the same version.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt")
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;]+)$")


def normalized(name: str) -> str:
    """A package name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: pathlib.Path) -> list[tuple[str, str]]:
    """Returns ``(line, file name)`` for every requirement in a file and its ``-r`` includes."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines += requirement_lines(path.parent / line.split(maxsplit=1)[1])
        else:
            lines.append((line, path.name))
    return lines


def pins(lines: list[tuple[str, str]]) -> dict[str, str]:
    """Maps normalized name -> version; fails on anything not pinned with ``==``."""
    result = {}
    for line, where in lines:
        match = PINNED.match(line.replace(" ", ""))
        if match is None:
            pytest.fail(f"{where}: {line!r} is not pinned as name==version")
        name = normalized(match["name"])
        assert name not in result or result[name] == match["version"], (
            f"{where}: {name} is pinned twice with different versions"
        )
        result[name] = match["version"]
    return result


def requirement_pins() -> dict[str, str]:
    lines = []
    for file_name in REQUIREMENT_FILES:
        lines += requirement_lines(ROOT / file_name)
    return pins(lines)


def environment_pins() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_lists = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert len(pip_lists) == 1, "environment.yml needs exactly one `pip:` list"
    lines = [(line, "environment.yml") for line in pip_lists[0] if line.strip() != "-e ."]
    return pins(lines)


def test_requirements_are_pinned_exactly():
    assert requirement_pins(), "requirements.txt lists no packages"


def test_environment_yml_pins_the_same_versions_as_the_requirements():
    required, conda = requirement_pins(), environment_pins()
    assert conda == required, (
        f"only in requirements*.txt: {sorted(required.keys() - conda.keys())}; "
        f"only in environment.yml: {sorted(conda.keys() - required.keys())}; "
        f"different versions: {sorted(n for n in required.keys() & conda.keys() if required[n] != conda[n])}"
    )


def test_constraints_pin_every_requirement_at_the_same_version():
    constraints = pins(requirement_lines(ROOT / "constraints.txt"))
    for name, version in requirement_pins().items():
        assert name in constraints, f"{name} is missing from constraints.txt"
        assert constraints[name] == version, (
            f"{name}: requirements say {version}, constraints.txt says {constraints[name]}"
        )
