"""Webhook endpoints as values: which changes an endpoint wants, and which URLs are allowed.

Pure: the rows come from Postgres (:mod:`worker.webhooks.store`), the checks are here so the CLI
and the dispatcher apply the same ones and unit tests need no database.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

#: Block categories an endpoint can filter on (``worker.model.Category`` values).
CATEGORIES = ("all", "marketing")
#: Hosts where plain http:// is allowed: a receiver on this machine (tests, development).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One configured endpoint. The secret signs requests; it is never shown in a repr or a log."""

    id: int
    account_id: str
    url: str = field(repr=False)
    """Not in the repr either: a URL can carry a token of the receiver's (CM.com-style webhooks)."""
    secret: str = field(repr=False)
    categories: frozenset[str]
    """Block categories wanted; empty: every category."""
    created_at: datetime

    def wants(self, account_id: str, category: str, emitted_at: datetime) -> bool:
        """A change of this account, of a wanted category, emitted after the endpoint was added.

        The last condition makes an endpoint's start independent of the dispatcher's consumer
        position: a new endpoint gets the changes from its creation on, not the topic's history,
        and a dispatcher starting a new consumer group (which reads from the beginning, so no
        change is lost) sends no history to anybody.
        """
        return (
            account_id == self.account_id
            and (not self.categories or category in self.categories)
            and emitted_at >= self.created_at
        )


def check_url(url: str) -> str:
    """``url`` if it is an https:// URL (or http:// to this machine); else ValueError, one line."""
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"--url: at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ValueError("--url: not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("--url: expected https://host/path")
    if parts.username is not None or parts.password is not None:
        raise ValueError("--url: no user:password@ in the URL; requests are signed with --secret instead")
    if parts.fragment:
        raise ValueError("--url: no #fragment")
    if parts.scheme == "http" and not _local(host):
        raise ValueError("--url: https:// required (http:// only to localhost or 127.0.0.1)")
    return url


def _local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_categories(values: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = sorted(set(values) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"--category: {', '.join(unknown)} is not one of {', '.join(CATEGORIES)}")
    return frozenset(values)


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe text (43 characters)."""
    return "whsec_" + secrets.token_urlsafe(32)


MIN_SECRET_CHARS = 16


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_CHARS or not secret.isprintable() or secret != secret.strip():
        raise ValueError(f"--secret: at least {MIN_SECRET_CHARS} printable characters, no spaces around")
    return secret
