"""The opaque cursor of ``GET /v1/blocks``: where the previous page ended (pure).

Keyset pagination: a page is the next ``limit`` active blocks after the last one returned, in
primary-key order, so a page costs the same at the millionth block as at the first, and a block
added or lifted meanwhile shifts no other row (offset pagination would skip or repeat one). The
cursor is that last key, as URL-safe base64 of a JSON array with a version; it is opaque to
clients (its form may change) and carries no account: the account always comes from the token, so
a cursor made by another account reveals nothing and points nowhere it could not go.
"""

from __future__ import annotations

import base64
import binascii

import orjson

_VERSION = 1
#: The key of an active block within an account, in the order the primary key sorts it.
KEY_FIELDS = ("address", "level", "subaccount_id", "sender", "channel", "category")
#: A cursor holds six identifiers of at most 256 bytes: anything much longer is not one of ours.
MAX_CURSOR_CHARS = 4096

BlockKey = tuple[str, str, str, str, str, str]


class CursorError(ValueError):
    """Not a cursor this API made (one line, for the 422 answer)."""


def encode_cursor(key: BlockKey) -> str:
    raw = orjson.dumps([_VERSION, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> BlockKey:
    if len(text) > MAX_CURSOR_CHARS:
        raise CursorError("cursor is too long: pass back the next_cursor of the previous page")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError("cursor is not one this API made: pass back next_cursor as it was") from None
    if (
        not isinstance(value, list)
        or len(value) != len(KEY_FIELDS) + 1
        or value[0] != _VERSION
        or not all(isinstance(part, str) for part in value[1:])
    ):
        raise CursorError("cursor is not one this API made: pass back next_cursor as it was")
    address, level, subaccount, sender, channel, category = value[1:]
    return (address, level, subaccount, sender, channel, category)
