"""Admission of local clients and their sources (DESIGN §11).

On loopback anyone on the machine can connect, including another session's sensor
or one left running from the previous patient. So each host writes a *session
ticket* — its session id, control endpoint and a random secret — to an owner-only
file in the user's runtime directory, named by its publish port. A local producer
reads the ticket and proves it belongs to the session with a ``hello`` command
carrying an HMAC of the secret; the host then admits the producer's source names.
Data from any other source is not recorded: it is counted and shown to the
therapist as pending, to admit or reject. The ticket also tells a second host
started on the same ports which session holds them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from .args import ArgError, to_str

HELLO_COMMAND = "hello"
MAX_SOURCE_CHARS = 64


def runtime_dir() -> Path:
    """The user's private runtime directory for session tickets (created 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "vrexposure" if base else Path(tempfile.gettempdir()) / \
        f"vrexposure-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if root.stat().st_uid != os.getuid() or root.stat().st_mode & 0o077:
        raise PermissionError(f"{root} must be a directory only this user can open")
    return root


def port_of(endpoint: str) -> str:
    port = endpoint.rsplit(":", 1)[-1]
    return port if port.isascii() and port.isdigit() else "x"


def ticket_path(publish_endpoint: str) -> Path:
    return runtime_dir() / f"session-{port_of(publish_endpoint)}.json"


def new_secret() -> str:
    return secrets.token_hex(32)


def write_ticket(publish_endpoint: str, ticket: dict[str, Any]) -> Path:
    """Write the ticket owner-only (atomically: a client never reads half of it)."""
    path = ticket_path(publish_endpoint)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(ticket, handle)
    os.replace(partial, path)
    return path


def read_ticket(publish_endpoint: str) -> dict[str, Any] | None:
    """The ticket of the session listening on this publish port, or None."""
    try:
        path = ticket_path(publish_endpoint)
        if path.stat().st_mode & 0o077:
            return None  # readable by others: not ours to trust
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_ticket(publish_endpoint: str, session_id: str) -> None:
    """Remove the ticket if it is still this session's."""
    ticket = read_ticket(publish_endpoint)
    if ticket is not None and ticket.get("session_id") == session_id:
        with contextlib.suppress(OSError):
            ticket_path(publish_endpoint).unlink()


def proof(secret: str, session_id: str, source: str, nonce: str) -> str:
    message = f"{session_id}|{source}|{nonce}".encode()
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


def hello_args(ticket: dict[str, Any], source: str) -> dict[str, str]:
    nonce = secrets.token_hex(8)
    return {"source": source, "nonce": nonce,
            "proof": proof(str(ticket["secret"]), str(ticket["session_id"]), source, nonce)}


def check_hello(secret: str, session_id: str, args: Any) -> str:
    """The source a ``hello`` admits; raises ArgError when it does not prove the secret."""
    if not isinstance(args, dict):
        raise ArgError("hello needs arguments")
    source = check_source(args.get("source"))
    nonce = to_str(args.get("nonce"), "nonce", 64)
    given = to_str(args.get("proof"), "proof", 128)
    if not hmac.compare_digest(given, proof(secret, session_id, source, nonce)):
        raise ArgError("the proof does not match this session's secret")
    return source


def new_tag() -> str:
    """A per-source binding key, given only to the client that proved the session."""
    return secrets.token_hex(16)


def binding(tag: str, topic: str, seq: int, t_s: float) -> str:
    """The MAC a bound producer puts in each message (``a``): over topic, sequence number
    and time, so a captured message cannot be sent again under a new sequence number."""
    message = f"{topic}|{seq}|{float(t_s)!r}".encode()
    # Keyed BLAKE2b is a MAC by design (RFC 7693) and one C call: a third of
    # HMAC-SHA256's cost, paid by every bound message in the producer and the host.
    return hashlib.blake2b(message, key=_tag_key(tag), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=256)
def _tag_key(tag: str) -> bytes:
    return bytes.fromhex(tag)


def check_binding(tags: list[str], topic: str, seq: int, t_s: float, auth: str | None
                  ) -> str | None:
    """The tag that signed this message, or None."""
    if auth is None:
        return None
    for tag in tags:
        if hmac.compare_digest(auth, binding(tag, topic, seq, t_s)):
            return tag
    return None


def check_source(value: Any) -> str:
    source = to_str(value, "source", MAX_SOURCE_CHARS)
    if not all(c.isascii() and (c.isalnum() or c in "._-") for c in source):
        raise ArgError(f"'source' must be letters, digits, '.', '_' or '-': {source[:40]!r}")
    return source


__all__ = ["HELLO_COMMAND", "check_hello", "check_source", "hello_args", "new_secret",
           "read_ticket", "remove_ticket", "runtime_dir", "ticket_path", "write_ticket"]
