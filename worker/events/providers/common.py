"""What every provider decoder shares: reading JSON, typed field access with readable details,
account mapping, and the final check of each document by the canonical decoder.

Details name the provider's own field ("results[1].receivedAt", "From"), so whoever reads the
dead letter looks in the right payload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson

from worker.errors import DeadLetterCode, InputError
from worker.events import inbound
from worker.events.providers import AccountMap, Decoded

_TYPES = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
          list: "array", dict: "object"}  # fmt: skip


def json_type(value: object) -> str:
    return _TYPES.get(type(value), type(value).__name__)


def load_json(raw: bytes | None) -> Any:
    """The JSON value of a record, or the dead-letter code the canonical decoder would give."""
    if not raw:
        raise InputError(DeadLetterCode.EMPTY_VALUE, "record value is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise InputError(
                DeadLetterCode.INVALID_UTF8, f"value is not valid UTF-8 at byte {bad.start}: {bad.reason}"
            ) from None
        raise InputError(DeadLetterCode.INVALID_JSON, f"value is not valid JSON: {exc}") from None


def missing(where: str) -> NoReturn:
    raise InputError(DeadLetterCode.MISSING_FIELD, f"required field {where!r} is missing")


def invalid(where: str, problem: str) -> NoReturn:
    raise InputError(DeadLetterCode.INVALID_FIELD, f"field {where!r} {problem}")


def obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an input error naming ``where``."""
    if type(value) is not dict:
        if where == "(top)":
            raise InputError(DeadLetterCode.NOT_AN_OBJECT, f"expected a JSON object, got {json_type(value)}")
        invalid(where, f"must be an object, got {json_type(value)}")
    return value


def array(value: Any, where: str) -> list[Any]:
    """``value`` if it is a JSON array, else an input error naming ``where``."""
    if type(value) is not list:
        invalid(where, f"must be an array, got {json_type(value)}")
    return value


def member(doc: dict[str, Any], key: str, where: str) -> Any:
    """``doc[key]``, or a missing_field error naming ``where``."""
    if key not in doc:
        missing(where)
    return doc[key]


def text(doc: dict[str, Any], key: str, where: str, *, empty: bool = False) -> str:
    """``doc[key]`` as a string (non-empty unless ``empty``), else an input error naming ``where``."""
    value = member(doc, key, where)
    if type(value) is not str:
        invalid(where, f"must be a string, got {json_type(value)}")
    if not value and not empty:
        invalid(where, "must not be empty")
    return value


def optional_text(doc: dict[str, Any], key: str, where: str) -> str | None:
    """``doc[key]`` as a non-empty string, None when absent or null."""
    value = doc.get(key)
    if value is None:
        return None
    if type(value) is not str:
        invalid(where, f"must be a string, got {json_type(value)}")
    return value or None


def account(accounts: AccountMap, fmt: str, provider_id: str) -> tuple[str, str | None]:
    """Our (account, subaccount) for a provider's account id: the rules file's mapping, else its
    wildcard entry for the format, else ``"<format>:<provider id>"``.

    Unmapped is not an error: dead-lettering would drop a subscriber's STOP until someone noticed.
    The format prefix keeps an unmapped provider id from ever naming one of our own accounts (or
    another provider's), so such blocks are recorded under an account of their own, visible in
    ``optout history``, until the mapping is added.
    """
    found = accounts.get((fmt, provider_id)) or accounts.get((fmt, "*"))
    return found if found is not None else (f"{fmt}:{provider_id}", None)


def epoch_stamp(value: Any, where: str, *, millis: bool = False) -> str:
    """An epoch time (seconds, or ``millis``; a number or a string of digits) as RFC 3339 UTC."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if type(value) is not int or value < 0:
        raise InputError(
            DeadLetterCode.INVALID_TIMESTAMP, f"{where} {str(value)[:64]!r} is not an epoch time in "
            f"{'milliseconds' if millis else 'seconds'}"
        )  # fmt: skip
    try:
        instant = datetime.fromtimestamp(value / 1000 if millis else value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InputError(DeadLetterCode.INVALID_TIMESTAMP, f"{where} {value} is out of range") from None
    return inbound.format_instant(instant)


def finish(doc: dict[str, Any], where: str = "") -> Decoded:
    """``doc`` checked by the canonical decoder itself (every limit and the timestamp rule): one
    set of rules for every input format. Its detail names the canonical field, prefixed by ``where``
    (the provider item it came from)."""
    try:
        raw = orjson.dumps(doc)
    except orjson.JSONEncodeError as exc:  # a lone surrogate cannot be encoded, nor stored
        raise InputError(DeadLetterCode.INVALID_FIELD, f"{where}: {exc}".lstrip(": ")) from None
    try:
        return inbound.decode(raw)
    except InputError as error:
        if not where:
            raise
        raise InputError(error.code, f"{where}: {error.detail}") from None
