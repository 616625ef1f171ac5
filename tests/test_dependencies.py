"""Every package the code, the tests and the benchmarks import is declared, installed from the
lock and importable; warnings are errors only when our own code raises them.

A green CI on a machine where someone installed a package by hand proves nothing: these tests
fail naming the package instead.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SCANNED = ("vrexposure", "scenes", "sensors", "tests", "bench", "scripts")
#: Optional extras not installed for the tests (hardware that cannot exist here): their
#: modules are imported lazily, behind a clear message. Module → distribution.
NOT_INSTALLED_HERE = {"openvr": "openvr", "p3dopenvr": "panda3d-openvr", "bleak": "bleak"}
#: Extras that the test environment installs (scripts/test: uv sync --extra test --extra panel).
INSTALLED_EXTRAS = ("test", "panel")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def _declared(extras: tuple[str, ...] | None = None) -> dict[str, str]:
    """Declared distribution → where it is declared (main or the extra's name)."""
    found = {_requirement_name(r): "dependencies" for r in PYPROJECT["dependencies"]}
    for extra, requirements in PYPROJECT["optional-dependencies"].items():
        if extras is None or extra in extras:
            for requirement in requirements:
                found.setdefault(_requirement_name(requirement), extra)
    return found


def _imported_modules() -> dict[str, str]:
    """Top-level third-party module → one file that imports it."""
    local = {p.name for p in ROOT.iterdir() if p.is_dir()}
    found: dict[str, str] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local or top.startswith("_"):
                        continue
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared() -> None:
    owners = packages_distributions()
    declared = _declared()
    problems = []
    for module, where in sorted(_imported_modules().items()):
        dists = {_norm(d) for d in owners.get(module, [])} or (
            {NOT_INSTALLED_HERE[module]} if module in NOT_INSTALLED_HERE else set())
        if not dists:
            problems.append(f"{module} (imported in {where}) is not installed and not known")
        elif not dists & declared.keys():
            problems.append(f"{module} (imported in {where}) comes from {', '.join(dists)}, "
                            "which pyproject.toml does not declare")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("extra", ["dependencies", *INSTALLED_EXTRAS])
def test_each_declared_package_is_installed_and_imports(extra: str) -> None:
    requirements = (PYPROJECT["dependencies"] if extra == "dependencies"
                    else PYPROJECT["optional-dependencies"][extra])
    owners = packages_distributions()
    problems = []
    for requirement in requirements:
        name = _requirement_name(requirement)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            problems.append(f"{name} ({extra}) is declared but not installed: is uv.lock "
                            "up to date (uv lock)?")
            continue
        dist_name = _norm(dist.metadata["Name"])
        if dist_name.startswith("types-"):
            continue  # type stubs: installed is all they need to be
        modules = [m for m, ds in owners.items()
                   if dist_name in {_norm(d) for d in ds} and m.isidentifier()
                   and not m.startswith("_") and m not in ("tests", "docs", "examples")]
        # The module named like the distribution first (PySide6 for PySide6-Essentials).
        modules.sort(key=lambda m: (not dist_name.startswith(_norm(m)), m))
        errors = []
        for module in modules:
            try:
                import_module(module)
                break
            except Exception as exc:
                errors.append(f"import {module}: {exc!r}")
        else:
            problems.append(f"{name} ({extra}) does not import: {'; '.join(errors) or 'no module'}")
    assert not problems, "\n".join(problems)


def test_the_lock_pins_every_declared_package() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {_norm(p["name"]) for p in lock["package"]}
    missing = sorted(set(_declared()) - locked)
    assert not missing, f"declared but not in uv.lock (run 'uv lock'): {missing}"


def test_known_breaking_majors_are_bounded() -> None:
    """PySide6 6.12 crashes on Python 3.11; pandas 4 removes what wfdb still uses."""
    requirements = {_requirement_name(r): r for r in
                    [*PYPROJECT["dependencies"],
                     *[r for rs in PYPROJECT["optional-dependencies"].values() for r in rs]]}
    assert "<6.12" in requirements["pyside6-essentials"]
    assert "<4" in requirements["pandas"]


WARNING_TEST = """
import warnings

def test_warns():
    warnings.warn_explicit("boom", UserWarning, "x.py", 1, module={module!r})
"""


@pytest.mark.parametrize(("module", "fatal"), [
    ("vrexposure.recorder", True), ("scenes.spiders", True), ("sensors.bitalino", True),
    ("wfdb.io.annotation", False), ("pandas.core.frame", False),
])
def test_warnings_are_errors_only_in_our_code(tmp_path: Path, module: str, fatal: bool) -> None:
    """The suite's filterwarnings, applied to a warning attributed to ``module``."""
    test_file = tmp_path / "test_warn.py"
    test_file.write_text(textwrap.dedent(WARNING_TEST.format(module=module)))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c",
         str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(test_file)],
        capture_output=True, text=True, timeout=120)
    assert (done.returncode != 0) == fatal, done.stdout[-2000:]
    if not fatal:
        assert "boom" in done.stdout  # reported in the warnings summary, not hidden


def test_readme_lists_the_system_packages_the_script_installs() -> None:
    listed = [line.strip() for line in
              (ROOT / "scripts" / "debian-packages.txt").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"apt-get install -y ([^\n`]+)", readme)
    assert command, "the README shows no apt-get install command for the system packages"
    assert sorted(command.group(1).split()) == sorted(listed)
