"""worker.events.joined: the C join of a keyword MO's records against the Python reference, and the
reference against hashlib's blake2b and orjson, on arbitrary text (escapes, non-ASCII, long ids)."""

from __future__ import annotations

import gc
import hashlib
import shutil
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from worker.events import joined
from worker.events.joined import python_join


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the Python join is in use, as designed")
    assert joined.COMPILED, "worker/events/_joined.c was not built: reinstall (pip install -e .)"


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)  # what orjson.loads can give
#: A shape plan's markers (0x01 and a letter) and lone 0x01s among the text: the join fills the first.
MARKED = st.lists(
    st.one_of(TEXT, st.sampled_from(["\x01a", "\x01s", "\x01n", "\x01c", "\x01", "\x01x"])), max_size=6
).map("".join)
PART = MARKED.map(str.encode)  # JSON pieces: UTF-8
PAIRS = st.lists(st.tuples(PART, PART), max_size=6).map(tuple)
PARTIES = st.one_of(st.none(), PART)


Pairs = tuple[tuple[bytes, bytes], ...]


def _args(
    account: str, message_id: str, address: str, sender: str, text: str | tuple[str], offset: int,
    scopes: Pairs, categories: Pairs, parties: bytes | None, subaccount: str | None, channel: str,
) -> tuple[Any, ...]:  # fmt: skip
    return (
        [], [], b'{"schema":1,"event_id":"', b'{"schema":1,"reply_id":"', account, subaccount, message_id,
        address, sender, channel, "2026-11-24T10:00:00.000000Z", "mo.inbound", 3, offset,
        b'"2026-11-24T10:00:01.000000Z"', scopes, categories, parties, text, b',"in_reply_to":',
    )  # fmt: skip


@pytest.mark.skipif(not joined.COMPILED, reason="the C extension was not built (no C compiler)")
@given(TEXT, TEXT, TEXT, TEXT, MARKED | MARKED.map(lambda t: (t,)), st.integers(0, 2**63 - 1), PAIRS, PAIRS,
       PARTIES, st.none() | TEXT, TEXT)  # fmt: skip
@example("acme", "m-1", "+15551234567", "ACME", "Stop \x00\x1f\"\\\b\f\n\r\t\x7f é \u2028", 0,
         ((b"[a,", b"x"),), ((b"]", b"y"),), b'","to":', None, "sms")  # fmt: skip
@example("a" * 150, "m" * 120, "x", "s", "", 7, ((b"k" * 100, b""),), ((b"", b""),), b"", "s",
         "rcs")  # past a block  # fmt: skip
@example('a"é', "m", "x", "s\n", ("from \x01n (\x01a) \x01 \x01s",), 0,
         ((b"[\x01a,\x01s,\x01n,\x01c,", b"\x01x\x01"),), ((b"]", b""),), b"\x01a\x01s\x01c", "s\\",
         "c\x01")  # markers and lone 0x01s in every piece  # fmt: skip
def test_the_c_join_writes_what_the_python_join_writes(
    account: str, message_id: str, address: str, sender: str, text: str | tuple[str], offset: int,
    scopes: Pairs, categories: Pairs, parties: bytes | None, subaccount: str | None, channel: str,
) -> None:  # fmt: skip
    from worker.events._joined import join

    given = (account, message_id, address, sender, text, offset, scopes, categories, parties)
    python, compiled = _args(*given, subaccount, channel), _args(*given, subaccount, channel)
    python_join(*python)
    join(*compiled)
    assert compiled[0] == python[0]
    assert compiled[1] == python[1]
    assert len(python[0]) == len(scopes) * len(categories)
    assert len(python[1]) == int(parties is not None)
    # Two bytes objects make no cycle: the C join's pairs are left out of the collector's walks.
    assert not any(gc.is_tracked(pair) for pair in compiled[0] + compiled[1])


@given(TEXT, TEXT, TEXT, TEXT)
@example("a" * 64, "b" * 55, "+1", "S")  # ids of exactly 128 bytes and more
def test_the_python_join_writes_orjsons_strings_and_derive_ids_ids(
    account: str, message_id: str, address: str, text: str
) -> None:
    changes: list[tuple[bytes, bytes]] = []
    replies: list[tuple[bytes, bytes]] = []
    key_head, event_head, tail, middle = b'["account",', b'","scope":{},"address":', b"]", b',"source":'
    python_join(
        changes, replies, b'{"event_id":"', b'{"reply_id":"', account, None, message_id, address, "SENDER",
        "sms", "2026-11-24T10:00:00.000000Z", "in", 0, 9, b'"now"', ((key_head, event_head),),
        ((tail, middle),), b'","to":', text, b',"in_reply_to":',
    )  # fmt: skip
    ((key, change),) = changes
    ((reply_key, reply),) = replies
    assert key == b'["account",' + orjson.dumps(address) + b"]"
    event = orjson.loads(change)
    assert event["address"] == address
    ids = f"{account}\x1f{message_id}".encode()
    assert (
        event["event_id"] == hashlib.blake2b(b"change\x1f" + ids + b"\x1f" + key, digest_size=16).hexdigest()
    )
    assert event["source"] == {"topic": "in", "partition": 0, "offset": 9, "message_id": message_id}
    assert (event["occurred_at"], event["emitted_at"]) == ("2026-11-24T10:00:00.000000Z", "now")
    document = orjson.loads(reply)
    assert document == {
        "reply_id": hashlib.blake2b(b"reply\x1f" + ids, digest_size=16).hexdigest(),
        "to": address,
        "from": "SENDER",
        "text": text,
        "in_reply_to": message_id,
        "source": event["source"],
        "occurred_at": event["occurred_at"],
        "emitted_at": "now",
    }
    assert reply == orjson.dumps(document)  # orjson's own bytes: the same escapes
    assert reply_key == address.encode()
