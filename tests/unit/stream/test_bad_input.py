"""Bad input of every shape through the classifier's batch step: never an exception, every bad
record dead-lettered with a code (and a letter that fits), every good record classified."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.factories import FakeRecord, inbound_doc, where
from worker.classify.rules import default_rulebook
from worker.errors import InputError
from worker.events import schemas
from worker.events.inbound import decode
from worker.stream.batch import BatchOutput, classify_records

RULEBOOK = default_rulebook()
_FIELDS = ("message_id", "channel", "from", "to", "account_id", "subaccount_id", "text", "received_at")

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)

_odd_strings = st.sampled_from(
    [
        "",
        "\x00",
        "+1555\x000001",
        "ＳＴＯＰ",  # full-width
        "ЅТОР",  # Cyrillic confusables
        "S\u200bT\u200bO\u200bP",
        "x" * 300,
        "é" * 200,
        "🙂" * 70,
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-11-24T10:00:00z",
        "20261124T100000Z",
        "\ud7ff",
    ]
)


@st.composite
def _mutated_doc(draw: st.DrawFn) -> bytes:
    """A valid inbound document with a few fields replaced by anything JSON can hold."""
    doc: dict[str, Any] = inbound_doc(
        draw(st.sampled_from(["STOP", "START", "HELP", "hello", "stop by later?"]))
    )
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3, unique=True)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            doc.pop(name, None)
        else:
            doc[name] = draw(_odd_strings) if choice == 1 else draw(_json)
    return orjson.dumps(doc)


_deep = st.integers(1, 600).map(lambda depth: b"[" * depth + b"]" * depth)
_HUGE = (orjson.dumps(inbound_doc("x" * 70_000)), b'{"text": "' + b"a" * 300_000 + b'"}')
_huge = st.integers(0, len(_HUGE) - 1).map(_HUGE.__getitem__)  # indexes: a short repr on failure
_values = st.none() | st.binary(max_size=64) | _mutated_doc() | _deep | _huge | _json.map(orjson.dumps)
_keys = st.none() | st.binary(max_size=16) | st.integers(1000, 5000).map(lambda size: b"k" * size)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(_keys, _values), min_size=1, max_size=8))
def test_any_bytes_never_stop_the_batch(records: list[tuple[bytes | None, bytes | None]]) -> None:
    batch = [
        FakeRecord("mo.inbound", 0, offset, 0, key, value) for offset, (key, value) in enumerate(records)
    ]
    out = BatchOutput(emitted_at="2026-11-24T10:00:00.000000Z", worker_version="test")
    classify_records(where(batch), batch, RULEBOOK, out)  # must not raise, whatever the bytes
    bad = 0
    for _, value in records:
        try:
            decode(value)
        except InputError:
            bad += 1
    assert out.consumed == len(records)
    assert len(out.dead_letters) == bad == sum(out.dead_by_code.values())
    validator = schemas.validator(schemas.DEAD_LETTER)
    for key, letter in out.dead_letters:
        assert len(letter) < 400_000
        assert key is None or len(key) <= 1024
        validator.validate(orjson.loads(letter))
