"""Discovery of built-in and clinic-supplied plugins and data folders.

Built-ins live in the repository's top-level ``scenes/``, ``sensors/``,
``hierarchies/`` and ``config/`` folders. A wheel ships them inside the package
as ``vrexposure/_builtin/<kind>``; an editable install reads the repository.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Literal

from .scene_api import SceneSpec
from .sensor_api import DriverSpec

log = logging.getLogger(__name__)

BuiltinKind = Literal["scenes", "sensors", "hierarchies", "config", "questionnaires"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def builtin_dir(kind: BuiltinKind) -> Path:
    """The folder holding the built-in ``kind`` (wheel first, then the source tree)."""
    shipped = _PACKAGE_DIR / "_builtin" / kind
    if shipped.is_dir():
        return shipped
    source_tree = _PACKAGE_DIR.parent / kind
    if source_tree.is_dir():
        return source_tree
    raise FileNotFoundError(
        f"built-in {kind} folder not found (looked in {shipped} and {source_tree})")


class PluginError(Exception):
    """A plugin file could not be loaded or does not declare what it must."""


def load_module(path: Path, namespace: str) -> ModuleType:
    """Import one plugin file as ``vrexposure_plugins.<namespace>.<stem>``."""
    name = f"vrexposure_plugins.{namespace}.{path.stem}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"{path}: failed to import: {exc}") from exc
    return module


def _plugin_files(folders: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        files.extend(sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")))
    return files


def discover_scenes(extra_dirs: Iterable[Path] = ()) -> dict[str, SceneSpec]:
    """All scene specs by name; a later folder's scene overrides a built-in of the same name."""
    return dict(_discover_scenes(tuple(Path(d).resolve() for d in extra_dirs)))


@cache
def _discover_scenes(extra_dirs: tuple[Path, ...]) -> tuple[tuple[str, SceneSpec], ...]:
    scenes: dict[str, SceneSpec] = {}
    for path in _plugin_files((builtin_dir("scenes"), *extra_dirs)):
        module = load_module(path, "scenes")
        spec = getattr(module, "SCENE", None)
        if not isinstance(spec, SceneSpec):
            raise PluginError(f"{path}: a scene plugin must define SCENE = SceneSpec(...)")
        scenes[spec.name] = spec
    return tuple(scenes.items())


def discover_sensors(extra_dirs: Iterable[Path] = ()) -> dict[str, DriverSpec]:
    """All sensor drivers by name (the file stem); later folders override built-ins."""
    drivers: dict[str, DriverSpec] = {}
    folders = (builtin_dir("sensors"), *(Path(d).resolve() for d in extra_dirs))
    for path in _plugin_files(folders):
        module = load_module(path, "sensors")
        spec = getattr(module, "DRIVER", None)
        if not isinstance(spec, DriverSpec) or spec.name != path.stem:
            raise PluginError(f"{path}: a sensor plugin must define DRIVER = DriverSpec(...) "
                              f"named '{path.stem}'")
        drivers[spec.name] = spec
    return drivers


def builtin_hierarchies() -> list[Path]:
    return sorted(builtin_dir("hierarchies").glob("*.yaml"))


def questionnaire_files(extra_dirs: Iterable[Path] = ()) -> list[Path]:
    """Questionnaire definitions: built-ins first, then clinic folders (which override a
    built-in of the same id, e.g. a licensed copy of a scoring-only instrument)."""
    files = list(sorted(builtin_dir("questionnaires").glob("*.yaml")))
    for folder in extra_dirs:
        files.extend(sorted(Path(folder).resolve().glob("*.yaml")))
    return files
