"""Webhook endpoints as values: which changes an endpoint wants, and which URLs are allowed.

Pure: the rows come from Postgres (:mod:`worker.webhooks.store`), the checks are here so the CLI
and the dispatcher apply the same ones and unit tests need no database.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


#: An endpoint row is visible once its INSERT commits, a moment after its ``created_at``: a load
#: taken at ``as_of`` may miss endpoints created up to this long before it.
COMMIT_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The enabled endpoints as of ``as_of`` (Postgres's clock when they were read)."""

    endpoints: tuple[Endpoint, ...]
    as_of: datetime

    def may_miss(self, newest_emitted: datetime | None) -> bool:
        """Could an endpoint added since this load want a change emitted at ``newest_emitted``?

        Only a change emitted after the endpoint was created is wanted (:meth:`Endpoint.wants`),
        so a batch of changes all emitted before this load needs no reload, however old the load
        (a backlog being caught up); a batch with fresher changes does, or an endpoint added a
        moment ago would miss them. Both times come from the same clock as ``created_at``'s
        comparisons, so clock skew between hosts cannot make this skip an endpoint.
        """
        return newest_emitted is not None and newest_emitted >= self.as_of - COMMIT_MARGIN


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
