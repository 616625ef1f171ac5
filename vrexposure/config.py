"""Settings: ``config/default.yaml`` overlaid with a user file (pure apart from reading it)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .plugins import builtin_dir
from .yamlsrc import YamlSyntaxError, load_yaml_file


class ConfigError(Exception):
    pass


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if key not in result:
            raise ConfigError(f"{where}: unknown setting '{key}' (known: {', '.join(result)})")
        if isinstance(result[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: '{key}' must be a mapping")
            result[key] = _merge(result[key], value, f"{where}.{key}")
        else:
            result[key] = value
    return result


def default_config() -> dict[str, Any]:
    with open(builtin_dir("config") / "default.yaml", encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict)
    return data


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    config = default_config()
    if path is not None:
        try:
            data, _ = load_yaml_file(Path(path))
        except YamlSyntaxError as exc:
            raise ConfigError(str(exc)) from exc
        if data is not None:
            if not isinstance(data, Mapping):
                raise ConfigError(f"{path}: a config file must be a mapping")
            config = _merge(config, data, str(path))
    if overrides:
        config = _merge(config, overrides, "overrides")
    return config


@dataclass(frozen=True)
class Endpoints:
    """Where the session host's sockets are."""

    publish: str
    feed: str
    host_feed: str
    control: str

    @staticmethod
    def from_config(config: Mapping[str, Any], host: str | None = None) -> Endpoints:
        net = config["network"]
        address = host or net["host"]
        return Endpoints(
            publish=f"tcp://{address}:{net['publish_port']}",
            feed=f"tcp://{address}:{net['feed_port']}",
            host_feed=f"tcp://{address}:{net['host_feed_port']}",
            control=f"tcp://{address}:{net['control_port']}",
        )

    @staticmethod
    def at(address: str, base_port: int) -> Endpoints:
        """Four consecutive ports from ``base_port``, in the order of ``config/default.yaml``:
        publish, feed, control, host feed."""
        return Endpoints(f"tcp://{address}:{base_port}", f"tcp://{address}:{base_port + 1}",
                         f"tcp://{address}:{base_port + 3}", f"tcp://{address}:{base_port + 2}")

    @staticmethod
    def loopback(base_port: int) -> Endpoints:
        return Endpoints.at("127.0.0.1", base_port)


def endpoints_overrides(endpoints: Endpoints) -> dict[str, Any]:
    """The ``network`` settings that put a process on ``endpoints`` (for a config file)."""
    def port(endpoint: str) -> int:
        return int(endpoint.rsplit(":", 1)[1])

    host = endpoints.control.split("://", 1)[1].rsplit(":", 1)[0]
    return {"network": {"host": host, "publish_port": port(endpoints.publish),
                        "feed_port": port(endpoints.feed),
                        "host_feed_port": port(endpoints.host_feed),
                        "control_port": port(endpoints.control)}}


def write_config(path: Path, endpoints: Endpoints, **sections: Mapping[str, Any]) -> Path:
    """A config file for child processes: these endpoints plus any other sections."""
    data = {**endpoints_overrides(endpoints), **{k: dict(v) for k, v in sections.items()}}
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    return path
