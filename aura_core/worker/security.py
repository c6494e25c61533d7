"""The shared worker token and TLS contexts.

The token is made on first use and kept in the data dir, readable by its owner only; workers send
it in the WebSocket handshake (`Authorization: Bearer ...`) and the hub compares it in constant
time before any JSON-RPC is spoken.
"""

from __future__ import annotations

import hmac
import os
import secrets
import ssl
from pathlib import Path

from aura_core.paths import data_dir
from aura_core.worker.protocol import AUTH_SCHEME

TOKEN_FILE = "worker-token"


def token_path(data_override: str | os.PathLike[str] | None = None) -> Path:
    return data_dir(data_override) / TOKEN_FILE


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_token(data_override: str | os.PathLike[str] | None = None) -> str | None:
    try:
        value = token_path(data_override).read_text().strip()
    except OSError:
        return None
    return value or None


def load_or_create_token(data_override: str | os.PathLike[str] | None = None) -> str:
    """The hub's token, generated (256 random bits, URL-safe) the first time it is asked for."""
    existing = read_token(data_override)
    if existing:
        return existing
    return rotate_token(data_override)


def rotate_token(data_override: str | os.PathLike[str] | None = None) -> str:
    token = secrets.token_urlsafe(32)
    _write_private(token_path(data_override), token + "\n")
    return token


def auth_header(token: str) -> str:
    return f"{AUTH_SCHEME} {token}"


def check_auth_header(value: str | None, token: str) -> bool:
    """True when the handshake's Authorization header carries the token (constant-time)."""
    if not value:
        return False
    scheme, _, given = value.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def server_tls(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def client_tls(ca: str | os.PathLike[str] | None = None, insecure: bool = False) -> ssl.SSLContext:
    """Verify the hub against the system CAs, or `ca` (a self-signed hub's cert); `insecure`
    turns verification off and is meant for a first try on a trusted network only."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
