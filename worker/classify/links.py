"""Opt-out links: signed, expiring tokens placed in messages (Infobip's opt-out link, CM.com's NO-S.MS).

A link carries everything a block needs (account, address, optional subaccount or sender,
channel, category) and its expiry, signed with HMAC-SHA256 under ``OPTOUT_LINK_SECRET``; the page
at ``/u/{token}`` (:mod:`worker.api.links`) shows it and a confirmation turns it into a change
event with reason ``link``. No database row is written when a link is made: the token is the
state. Only a confirmed link's id is recorded, so that it is confirmed once.

The token, URL-safe base64 without padding, of::

    version (1 byte = 1) | flags (1) | expiry (4, unix seconds, big-endian)
    | address (7 bytes: E.164 digits as an integer when flag PACKED, else length-prefixed UTF-8)
    | account | subaccount or sender (per the level flags) | channel   (each: 1-byte length + UTF-8)
    | tag (16 bytes: HMAC-SHA256 of "optout-link" + everything before, truncated to 128 bits)

flags: bits 0-1 the level (0 account, 1 subaccount, 2 sender), bit 2 category marketing, bit 3
address packed. A typical SMS link (``+447700900123``, account ``acme``, every channel) is 35
bytes, 47 characters of token (README: Opt-out links; tests/unit/classify/test_links.py).

Signed, not encrypted: whoever holds a link can decode the address and account from it (as they
can read the message it came in). Verification checks, in order: the text is canonical base64 of
a plausible length and version (else *malformed*), the tag (else *forged*: constant-time compare,
before any field is parsed), then the expiry (else *expired*). Pure: no I/O and no clock; the
caller passes ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from enum import StrEnum

from worker.classify.manual import ManualChange, ManualChangeError, manual_change
from worker.constants import ALL_CHANNELS
from worker.events.address import Countries
from worker.events.outgoing import derive_id
from worker.model import Action, Category, ScopeLevel

#: The ``reason`` of a change confirmed through an opt-out link.
REASON_LINK = "link"
#: Secrets shorter than this are refused (HMAC-SHA256's block is 64 bytes; 32 is its output size).
MIN_SECRET_BYTES = 32
VERSION = 1
TAG_BYTES = 16
_DOMAIN = b"optout-link"
_HEADER = struct.Struct(">BBI")
_PACKED_BYTES = 7  # 15 decimal digits < 2**56
_LEVELS = (ScopeLevel.ACCOUNT, ScopeLevel.SUBACCOUNT, ScopeLevel.SENDER)
_MARKETING = 0b100
_PACKED = 0b1000
_KNOWN_FLAGS = 0b1111
_MAX_FIELD = 255
#: No token is shorter: header, three length bytes (address, account, channel), the tag.
_MIN_BYTES = _HEADER.size + 3 + TAG_BYTES
_MAX_CHARS = 2048
_PACKABLE = re.compile(r"\+[1-9][0-9]{7,14}").fullmatch
_B64 = re.compile(r"[A-Za-z0-9_-]+").fullmatch


class LinkProblem(StrEnum):
    """Why a token was refused; the page and the HTTP status follow from it."""

    MALFORMED = "malformed"
    """Not a token of ours at all (truncated, mangled by a mail client, wrong version)."""
    FORGED = "forged"
    """Well formed, but not signed with our secret (or altered)."""
    EXPIRED = "expired"


class LinkError(ValueError):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"opt-out link {problem.value}")
        self.problem = problem


class LinkSecret:
    """The HMAC key of opt-out links. Its repr and str never show it (a traceback, a log line)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -base64 32`)")
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, _DOMAIN + data, hashlib.sha256).digest()[:TAG_BYTES]

    def __repr__(self) -> str:
        return "LinkSecret(***)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Link:
    """What a link asks for: block ``change`` (an opt-out) until ``expires_at`` (unix seconds)."""

    change: ManualChange
    expires_at: int

    @property
    def link_id(self) -> str:
        """Derived from the content (never random): the same link made twice is one link, and
        ``used_links`` records it once."""
        scope = self.change.scope
        return derive_id(
            REASON_LINK,
            self.change.address,
            scope.account_id,
            scope.level.value,
            scope.subaccount_id or "",
            scope.sender or "",
            scope.channel,
            self.change.category.value,
            str(self.expires_at),
        )


def make_link(fields: dict[str, str | None], expires_at: int, countries: Countries | None = None) -> Link:
    """Validate the fields of an opt-out (as :func:`worker.classify.manual.manual_change` reads
    them: address, account, subaccount or sender, channel, category) into a :class:`Link`.
    Raises :class:`ManualChangeError` naming the field."""
    change = manual_change({**fields, "action": Action.BLOCK.value}, countries or Countries())
    scope = change.scope
    for name, value in (
        ("address", change.address),
        ("account", scope.account_id),
        ("subaccount", scope.subaccount_id),
        ("sender", scope.sender),
        ("channel", scope.channel),
    ):
        if value is not None and len(value.encode()) > _MAX_FIELD:
            raise ManualChangeError(f"{name} is longer than {_MAX_FIELD} bytes: too long for a link")
    if not 0 < expires_at < 2**32:
        raise ManualChangeError("expiry is outside 1970-2106")
    return Link(change, expires_at)


def encode(link: Link, secret: LinkSecret) -> str:
    """The signed token of ``link``: URL-safe base64, no padding."""
    change, scope = link.change, link.change.scope
    flags = _LEVELS.index(scope.level)
    if change.category is Category.MARKETING:
        flags |= _MARKETING
    body = bytearray()
    if _PACKABLE(change.address):
        flags |= _PACKED
        body += int(change.address[1:]).to_bytes(_PACKED_BYTES, "big")
    else:
        body += _text(change.address)
    body += _text(scope.account_id)
    narrower = scope.subaccount_id if scope.level is ScopeLevel.SUBACCOUNT else scope.sender
    if narrower is not None:
        body += _text(narrower)
    body += _text("" if scope.channel == ALL_CHANNELS else scope.channel)  # the usual case: 1 byte
    data = _HEADER.pack(VERSION, flags, link.expires_at) + bytes(body)
    return base64.urlsafe_b64encode(data + secret.sign(data)).rstrip(b"=").decode("ascii")


def decode(token: str, secret: LinkSecret, now: int) -> Link:
    """The link ``token`` stands for, if we signed it and it has not expired at ``now`` (unix
    seconds); else :class:`LinkError` saying which of malformed, forged or expired."""
    raw = _unbase64(token)
    if raw is None or len(raw) < _MIN_BYTES or raw[0] != VERSION:
        raise LinkError(LinkProblem.MALFORMED)
    data, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, secret.sign(data)):
        raise LinkError(LinkProblem.FORGED)
    try:
        link = _parse(data)
    except (ValueError, IndexError, UnicodeDecodeError):
        # Signed by us yet unreadable: only a bug of ours (or a leaked secret) makes one.
        raise LinkError(LinkProblem.MALFORMED) from None
    if now >= link.expires_at:
        raise LinkError(LinkProblem.EXPIRED)
    return link


def _unbase64(token: str) -> bytes | None:
    if not 0 < len(token) <= _MAX_CHARS or not token.isascii() or not _B64(token) or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Canonical only: the last character's unused low bits must be zero, so that exactly one text
    # stands for each token (otherwise four texts would decode to the same signed bytes).
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    return raw


def _parse(data: bytes) -> Link:
    _, flags, expires_at = _HEADER.unpack_from(data)
    if flags & ~_KNOWN_FLAGS or flags & 0b11 == 0b11:
        raise ValueError("unknown flags")
    at = _HEADER.size
    if flags & _PACKED:
        address = "+" + str(int.from_bytes(data[at : at + _PACKED_BYTES], "big"))
        at += _PACKED_BYTES
    else:
        address, at = _read(data, at)
    account, at = _read(data, at)
    level = _LEVELS[flags & 0b11]
    narrower = None
    if level is not ScopeLevel.ACCOUNT:
        narrower, at = _read(data, at)
    channel, at = _read(data, at)
    if at != len(data):
        raise ValueError("trailing bytes")
    fields: dict[str, str | None] = {
        "address": address,
        "account": account,
        "subaccount": narrower if level is ScopeLevel.SUBACCOUNT else None,
        "sender": narrower if level is ScopeLevel.SENDER else None,
        "channel": channel or ALL_CHANNELS,
        "category": Category.MARKETING.value if flags & _MARKETING else Category.ALL.value,
    }
    return make_link(fields, expires_at)


def _text(value: str) -> bytes:
    raw = value.encode()
    return bytes((len(raw),)) + raw


def _read(data: bytes, at: int) -> tuple[str, int]:
    size = data[at]
    end = at + 1 + size
    if end > len(data):
        raise ValueError("truncated")
    return data[at + 1 : end].decode(), end


_TTL = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Longest lifetime ``--ttl`` accepts: a link in a message a subscriber keeps for a year still works.
MAX_TTL_SECONDS = 400 * 86400


def parse_ttl(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``3600s`` as seconds (1 second to 400 days); else ValueError."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m or 3600s")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds > MAX_TTL_SECONDS:
        raise ValueError(f"{text!r} is longer than 400d")
    return seconds
