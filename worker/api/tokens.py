"""API tokens: their text form, parsing and hashing (pure; the table is :mod:`worker.api.tokenstore`).

A token is ``opt_<id>_<secret>``: the id (16 hex digits) is how a request's token is found in
Postgres, the secret (43 characters of URL-safe base64, 256 bits) is what proves it. Only the
sha256 of the secret is stored, never the secret, so a leaked table or backup lets nobody call the
API; and since the secret is random and long, a plain sha256 (no salt, no slow hash) is enough: no
dictionary holds it. Comparison is constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

PREFIX = "opt_"
_ID_HEX = 16
_SECRET_BYTES = 32
#: ``opt_`` + 16 hex digits + ``_`` + the secret (URL-safe base64, which may itself hold ``_``).
_TOKEN = re.compile(rf"^{PREFIX}([0-9a-f]{{{_ID_HEX}}})_([A-Za-z0-9_-]{{20,100}})$")


@dataclass(frozen=True, slots=True)
class TokenText:
    """A token as the caller holds it. The secret never appears in a repr (nor, so, in a log)."""

    token_id: str
    secret: str = field(repr=False)

    def __str__(self) -> str:
        """The full token, to print once when it is made: never log it."""
        return f"{PREFIX}{self.token_id}_{self.secret}"


def new_token() -> TokenText:
    """A fresh random token (:mod:`secrets`)."""
    return TokenText(secrets.token_hex(_ID_HEX // 2), secrets.token_urlsafe(_SECRET_BYTES))


def parse_token(text: str) -> TokenText | None:
    """The id and secret of ``opt_<id>_<secret>``, or None when it is not of that form."""
    match = _TOKEN.match(text.strip())
    if match is None:
        return None
    return TokenText(match.group(1), match.group(2))


def secret_hash(secret: str) -> bytes:
    """What the table stores: sha256 of the secret's UTF-8 bytes (32 bytes)."""
    return hashlib.sha256(secret.encode()).digest()


def matches(secret: str, stored_hash: bytes) -> bool:
    """Whether ``secret`` is the one whose hash is stored, in constant time."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def valid_id(token_id: str) -> bool:
    """Whether ``token_id`` has the form of a token id (``optout token revoke ID``)."""
    return re.fullmatch(rf"[0-9a-f]{{{_ID_HEX}}}", token_id) is not None
