"""A keyword MO's change events and reply, joined from cached JSON pieces: the classifier's encoder.

:func:`worker.classify.decide.decide_encoded` decides what a keyword MO changes and keeps, per
match, the JSON pieces that decides, with markers where the MO's account, subaccount, sender and
channel go (:data:`MARKS`); :func:`join_keyword_records` fills them and adds the rest of what is
the MO's own (its address, ids, source and times) and appends the (key, value) records.
The result is byte for byte what ``orjson.dumps`` writes for the documents
:func:`worker.events.outgoing.encode_change` and ``encode_reply`` build
(``tests/unit/events/test_joined.py`` and ``tests/unit/stream/test_pipeline.py`` compare them).

The C twin (``worker/events/_joined.c``, built by ``pip install`` when a C compiler is there)
does the same in one call: in a STOP storm this join was about half of a keyword MO's decide and
encode (two blake2b ids, a dozen ``orjson.dumps`` and ``join`` calls per MO). This Python version
is the reference, and the fallback when the extension was not built.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from worker.events.outgoing import change_event_id, reply_id

Records = list[tuple[bytes, bytes]]
Scopes = tuple[tuple[bytes, bytes], ...]
"""Per scope the MO changes: its block key's JSON up to the address, and its change event's JSON
from the end of the id to the address."""
Categories = tuple[tuple[bytes, bytes], ...]
"""Per category: the block key's JSON after the address, and the change event's JSON from the end
of the address to "source" (what the match decides)."""

#: In a shape plan's pieces (:func:`worker.classify.decide.decide_encoded`, made once per match, not
#: per MO context), the MO's account, subaccount, sender and channel: 0x01 and one of "asnc", which
#: the join fills with the value as JSON (a null subaccount: null). orjson escapes every byte below
#: 0x20, so JSON holds no 0x01 of its own; a 0x01 before any other byte stays as it is.
MARKS = {"account": b"\x01a", "subaccount": b"\x01s", "sender": b"\x01n", "channel": b"\x01c"}
_MARK = re.compile(rb"\x01([asnc])")


#: In a shape plan's reply text (a str), the sender and the account its template names.
_TEXT_MARK = re.compile("\x01([an])")


def fill(piece: bytes, values: dict[bytes, bytes]) -> bytes:
    """``piece`` with its markers replaced by ``values`` (keyed by the letter after 0x01)."""
    return _MARK.sub(lambda m: values[m.group(1)], piece) if b"\x01" in piece else piece


def fill_text(text: str, account: str, sender: str) -> str:
    """A shape plan's reply ``text`` with the sender and account it names."""
    return _TEXT_MARK.sub(lambda m: account if m.group(1) == "a" else sender, text)


def python_join(
    changes: Records,
    replies: Records,
    change_head: bytes,
    reply_head: bytes,
    account: str,
    subaccount: str | None,
    message_id: str,
    address: str,
    sender: str,
    channel: str,
    received_at: str,
    topic: str,
    partition: int,
    offset: int,
    emitted: bytes,
    scopes: Scopes,
    categories: Categories,
    reply_parties: bytes | None,
    text: str | tuple[str],
    reply_match: bytes,
) -> None:
    """Append the MO's change events (per category, per scope) to ``changes`` and, when
    ``reply_parties`` is given, its reply to ``replies``.

    ``change_head``/``reply_head``: a document's JSON up to its id; ``emitted``: the batch's
    ``emitted_at`` as JSON; ``reply_parties``: a reply's JSON from the end of its id to "to";
    ``text``: the reply's, or ``(text,)`` with a shape plan's markers for the sender and account;
    ``reply_match``: from "keyword" to "in_reply_to". Ids are
    :func:`worker.events.outgoing.change_event_id`'s and ``reply_id``'s. ``subaccount`` and
    ``channel`` (with ``account`` and ``sender``) fill the markers of a shape plan's pieces.
    """
    quoted = orjson.dumps(address)
    dumps = orjson.dumps
    values = {b"a": dumps(account), b"s": dumps(subaccount), b"n": dumps(sender), b"c": dumps(channel)}
    where: dict[str, str | int] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "message_id": message_id,
    }
    times = b',"occurred_at":' + orjson.dumps(received_at) + b',"emitted_at":' + emitted + b"}"
    rest = orjson.dumps(where) + times
    for tail, middle in categories:
        for key_head, event_head in scopes:
            key = fill(key_head, values) + quoted + tail
            event_id = change_event_id(account, message_id, key).encode()
            event = fill(event_head, values)
            changes.append((key, b"".join((change_head, event_id, event, quoted, middle, rest))))
    if reply_parties is not None:
        value = b"".join(
            (
                reply_head,
                reply_id(account, message_id).encode(),
                fill(reply_parties, values),
                quoted,
                b',"from":',
                orjson.dumps(sender),
                b',"text":',
                orjson.dumps(text if isinstance(text, str) else fill_text(text[0], account, sender)),
                reply_match,
                orjson.dumps(message_id),
                b',"source":',
                rest,
            )
        )
        replies.append((address.encode(), value))


join_keyword_records: Callable[..., None] = python_join
join_planned: Callable[..., bool] | None = None
"""C only: the whole of :func:`worker.classify.decide.decide_encoded` for a keyword MO whose
subscriber, sender and channel are canonical already, whose received time is in a common UTC
form and whose plan is made (nearly every one): its document's fields read, the parties checked,
the time made canonical, the plan found and the records joined in one call. False, with nothing
written, when Python must decide (see ``_joined.c``)."""
COMPILED = False
try:
    from worker.events import _joined

    join_keyword_records, join_planned, COMPILED = _joined.join, _joined.join_planned, True
except ImportError:  # no C compiler at install time: the Python above
    pass
