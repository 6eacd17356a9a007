"""Webhook signatures: ``Optout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``"<t>." + body`` with the endpoint's secret, so neither the body nor the time can
be changed without the secret; a receiver that also refuses timestamps outside a tolerance window
(:func:`verify`, 5 minutes by default) cannot be fed a captured request again later (replay). The
format is Stripe's, which many receivers already know how to check.

Pure (standard library only): a receiver, a send service included, imports this module without
the dispatcher's HTTP client, Postgres driver or Kafka client.
"""

from __future__ import annotations

import hashlib
import hmac
import time

#: The request header that carries the signature.
SIGNATURE_HEADER = "Optout-Signature"
#: The version tag of the scheme: HMAC-SHA256 of ``"<t>." + body``, lower-case hex.
SCHEME = "v1"
#: Default tolerance of :func:`verify`, in seconds, either side of the receiver's clock.
DEFAULT_TOLERANCE = 300


class SignatureError(ValueError):
    """The request is not signed with the secret, or not within the tolerance window."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def compute(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    return hmac.new(_key(secret), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The value of the :data:`SIGNATURE_HEADER` header for ``body`` sent at ``timestamp`` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={compute(secret, t, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; several ``v1`` entries are allowed (a sender that
    signs with an old and a new secret while they are rotated)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals:
            continue
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"{SIGNATURE_HEADER} has no timestamp (t=<unix seconds>)")
    if not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} has no {SCHEME} signature")
    return timestamp, signatures


def verify(
    secret: str | bytes,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a webhook request; return its signed timestamp, or raise :class:`SignatureError`.

    ``body`` must be the raw request body, byte for byte (not a re-serialized JSON document).
    A timestamp more than ``tolerance`` seconds from ``now`` (default: this machine's clock) is
    refused even when the HMAC matches: that is what makes a captured request useless later. The
    comparison takes constant time. De-duplicate on the ``Optout-Event-Id`` header as well: a
    delivery can be retried, so the same change may arrive more than once.
    """
    timestamp, signatures = parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"{SIGNATURE_HEADER} timestamp {timestamp} is outside the tolerance of {tolerance}s"
        )
    expected = compute(secret, timestamp, body).encode()
    # Compared as bytes: compare_digest refuses a str with non-ASCII characters (a forged header).
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body and the secret")
    return timestamp
