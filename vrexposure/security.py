"""CurveZMQ keys, the allow-list with a role per key, and socket set-up.

A key directory holds the host's key pair (``host.key``, ``host.key_secret``),
one key pair per client under ``clients/`` (``NAME.key``, ``NAME.key_secret``,
to be copied to that client's machine) and ``authorized.yaml``: each client's
public key, role and revocation flag. Secret files are created 0600 and the
directories 0700. The host authenticates every connection against the
allow-list (ZAP) and ties each command to the role of the key that sent it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

CLIENT_ROLES = ("therapist", "patient", "observer", "renderer", "sensor")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

#: Which roles may connect to which host socket (the ZAP domain of that socket).
DOMAIN_ROLES: dict[str, frozenset[str]] = {
    "publish": frozenset({"renderer", "sensor", "therapist"}),
    "feed": frozenset(CLIENT_ROLES),
    "control": frozenset(CLIENT_ROLES),
}


class KeyStoreError(Exception):
    """A key directory problem, with a message for the user."""


@dataclass(frozen=True)
class ClientKey:
    name: str
    role: str
    public_key: str
    revoked: bool = False


@dataclass(frozen=True)
class CurveClient:
    """What a client needs to connect: its key pair and the host's public key."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes

    def apply(self, socket: zmq.Socket[Any]) -> None:
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key
        socket.curve_serverkey = self.server_key


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _write_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    public, secret = zmq.auth.create_certificates(str(directory), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def init_keys(directory: Path) -> Path:
    """Create the host key pair and an empty allow-list; refuses to overwrite."""
    directory = Path(directory)
    if (directory / "host.key_secret").exists():
        raise KeyStoreError(f"{directory} already has host keys")
    _private_dir(directory)
    _private_dir(directory / "clients")
    _write_keypair(directory, "host")
    _save_allow_list(directory, {})
    return directory


def _allow_list_path(directory: Path) -> Path:
    return Path(directory) / "authorized.yaml"


def load_allow_list(directory: Path) -> dict[str, ClientKey]:
    path = _allow_list_path(directory)
    if not path.exists():
        raise KeyStoreError(f"{directory} is not a key directory (run 'vrexposure keys init')")
    data = yaml.safe_load(path.read_text()) or {}
    return {name: ClientKey(name, str(entry["role"]), str(entry["public_key"]),
                            bool(entry.get("revoked", False)))
            for name, entry in data.get("clients", {}).items()}


def _save_allow_list(directory: Path, clients: Mapping[str, ClientKey]) -> None:
    path = _allow_list_path(directory)
    body = {"clients": {c.name: {"role": c.role, "public_key": c.public_key,
                                 "revoked": c.revoked} for c in clients.values()}}
    # Written aside and renamed: the host re-reads this file while it runs, and must never
    # see it half-written (an empty allow-list refuses everyone and hides revocations).
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# vrexposure allow-list: client name -> role and CurveZMQ public key\n")
        yaml.safe_dump(body, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def add_client(directory: Path, name: str, role: str) -> ClientKey:
    if not NAME_RE.match(name):
        raise KeyStoreError(f"client name {name!r}: use letters, digits, '-' or '_'")
    if role not in CLIENT_ROLES:
        raise KeyStoreError(f"role {role!r}: one of {', '.join(CLIENT_ROLES)}")
    clients = load_allow_list(directory)
    if name in clients:
        raise KeyStoreError(f"client {name!r} exists (revoke it and add a new name)")
    public_path, _ = _write_keypair(Path(directory) / "clients", name)
    public, _ = zmq.auth.load_certificate(str(public_path))
    client = ClientKey(name, role, public.decode("ascii"))
    clients[name] = client
    _save_allow_list(directory, clients)
    return client


def revoke_client(directory: Path, name: str) -> ClientKey:
    clients = load_allow_list(directory)
    if name not in clients:
        raise KeyStoreError(f"no client named {name!r}")
    clients[name] = ClientKey(name, clients[name].role, clients[name].public_key, True)
    _save_allow_list(directory, clients)
    return clients[name]


def host_keys(directory: Path) -> tuple[bytes, bytes]:
    path = Path(directory) / "host.key_secret"
    if not path.exists():
        raise KeyStoreError(f"{directory} has no host keys (run 'vrexposure keys init')")
    public, secret = zmq.auth.load_certificate(str(path))
    assert secret is not None
    return public, secret


def client_credentials(directory: Path, name: str) -> CurveClient:
    """A client's credentials from a key directory (its secret file and the host's public key)."""
    secret_path = Path(directory) / "clients" / f"{name}.key_secret"
    if not secret_path.exists():
        raise KeyStoreError(f"no secret key for client {name!r} in {directory}/clients")
    public, secret = zmq.auth.load_certificate(str(secret_path))
    server_public, _ = zmq.auth.load_certificate(str(Path(directory) / "host.key"))
    assert secret is not None
    return CurveClient(public, secret, server_public)


class _AllowList:
    """ZAP credentials provider: accepts a key if listed, not revoked, and its role fits."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.refused = 0
        self._cache: tuple[int, dict[str, str], frozenset[str]] = (-1, {}, frozenset())

    def _load(self) -> tuple[int, dict[str, str], frozenset[str]]:
        # Re-read whenever the file changes, so a revocation takes effect without a restart.
        mtime_ns = _allow_list_path(self.directory).stat().st_mtime_ns
        cache = self._cache
        if mtime_ns != cache[0]:
            clients = load_allow_list(self.directory).values()
            cache = (mtime_ns, {c.public_key: c.role for c in clients if not c.revoked},
                     frozenset(c.public_key for c in clients if c.revoked))
            self._cache = cache
        return cache

    def roles_by_key(self) -> dict[str, str]:
        return self._load()[1]

    def revoked_keys(self) -> frozenset[str]:
        """Public keys marked revoked (a key revoked moments after it was added too)."""
        return self._load()[2]

    def callback(self, domain: str, key: bytes) -> bool:
        role = self.roles_by_key().get(key.decode("ascii"))
        allowed = role is not None and role in DOMAIN_ROLES.get(domain, frozenset())
        if not allowed:
            self.refused += 1
            log.warning("refused a connection to '%s' from an unknown, revoked or "
                        "unauthorised key", domain)
        return allowed


class HostSecurity:
    """The host side: a ZAP authenticator thread and CURVE server sockets."""

    def __init__(self, directory: Path, context: zmq.Context[Any]) -> None:
        self.directory = Path(directory)
        self.public_key, self.secret_key = host_keys(self.directory)
        self.allow_list = _AllowList(self.directory)
        self._auth = ThreadAuthenticator(context, log=logging.getLogger("vrexposure.zap"))
        self._auth.start()
        for domain in DOMAIN_ROLES:
            self._auth.configure_curve_callback(domain, self.allow_list)

    def serve(self, socket: zmq.Socket[Any], domain: str) -> None:
        socket.zap_domain = domain.encode()
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_server = True

    def role_of(self, user_id: str) -> str | None:
        return self.allow_list.roles_by_key().get(user_id)

    def name_of(self, user_id: str) -> str | None:
        """The allow-list name of a (not revoked) public key, for the record."""
        for client in load_allow_list(self.directory).values():
            if client.public_key == user_id and not client.revoked:
                return client.name
        return None

    def stop(self) -> None:
        self._auth.stop()
