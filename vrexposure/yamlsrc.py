"""YAML loading that remembers the source line of every key and item.

Validation messages must name ``file:line``; PyYAML's composed node tree has
the marks, so we construct plain Python data and a path → line map from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

#: Limits for hand-written files (hierarchies, settings): a real one is a few KB and a
#: few levels deep. Checked before the document is built, so a hostile file cannot
#: exhaust memory (alias bombs) or the stack (deep nesting).
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32


class YamlSyntaxError(Exception):
    """The file is not well-formed YAML; carries the file and line."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass
class SourceMap:
    """Line numbers (1-based) of the keys and items of a loaded document."""

    path: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, key_path: PathKey) -> int:
        """The line of ``key_path`` or of its nearest ancestor that has one."""
        probe = tuple(key_path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)


def _walk(node: yaml.Node, key_path: PathKey, lines: dict[PathKey, int], path: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                # PyYAML keeps the last silently; a clinician's file must not.
                raise YamlSyntaxError(path, line, f"duplicate key '{key}' "
                                                  f"(first on line {seen[key]})")
            seen[key] = line
            child = (*key_path, key)
            lines[child] = line
            _walk(value_node, child, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*key_path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, path)


def _check_events(text: str, path: str, max_depth: int) -> None:
    """Refuse anchors/aliases and nesting deeper than ``max_depth`` (streamed: nothing
    is built, so neither check can itself be overwhelmed)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlSyntaxError(path, line, "anchors and aliases (&name, *name) are not "
                                              "allowed: write the values out")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlSyntaxError(path, line, f"nested deeper than {max_depth} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def load_yaml_text(text: str, path: str = "<string>", *,
                   max_depth: int = MAX_DEPTH) -> tuple[Any, SourceMap]:
    """Parse ``text`` and return (data, source map). Raises :class:`YamlSyntaxError`."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlSyntaxError(path, 1, f"larger than {MAX_FILE_BYTES} bytes")
    try:
        _check_events(text, path, max_depth)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, SourceMap(path, {(): 1})
        loader = yaml.SafeLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(path, line, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(path, 1, f"invalid YAML: {exc}") from exc
    lines: dict[PathKey, int] = {(): node.start_mark.line + 1}
    _walk(node, (), lines, path)
    return data, SourceMap(path, lines)


def load_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise YamlSyntaxError(str(path), 1, f"cannot read: {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise YamlSyntaxError(str(path), 1, f"{size} bytes: larger than {MAX_FILE_BYTES} "
                                            "(a hierarchy or settings file is a few KB)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(str(path), 1, f"not UTF-8 text: {exc}") from exc
    return load_yaml_text(text, str(path))
