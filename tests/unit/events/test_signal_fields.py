"""The inbound document's optional ``intent`` and ``category``: checked by the canonical decoder
only when present, and the schema agrees with it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.unit.factories import inbound_doc
from worker.errors import DeadLetterCode, InputError
from worker.events.inbound import decode
from worker.events.schemas import INBOUND, validator


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    return [e.message for e in validator(INBOUND).iter_errors(doc)]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"intent": "opt_out"},
        {"intent": "opt_in", "category": "marketing"},
        {"intent": "help", "category": "all"},
    ],
)
def test_accepted_by_both(fields: dict[str, Any]) -> None:
    doc = inbound_doc("STOP", **fields)
    assert decode(orjson.dumps(doc))[0] == doc
    assert _schema_errors(doc) == []


@pytest.mark.parametrize(
    ("fields", "code", "detail"),
    [
        ({"intent": "stop"}, DeadLetterCode.INVALID_FIELD, "'intent'"),
        ({"intent": None}, DeadLetterCode.INVALID_FIELD, "'intent'"),
        ({"intent": "none"}, DeadLetterCode.INVALID_FIELD, "'intent'"),
        ({"intent": "opt_out", "category": "promo"}, DeadLetterCode.INVALID_FIELD, "'category'"),
        ({"intent": "opt_out", "category": 1}, DeadLetterCode.INVALID_FIELD, "'category'"),
        ({"category": "marketing"}, DeadLetterCode.MISSING_FIELD, "'intent' is required"),
    ],
)
def test_refused_by_both(fields: dict[str, Any], code: DeadLetterCode, detail: str) -> None:
    doc = inbound_doc("STOP", **fields)
    with pytest.raises(InputError) as error:
        decode(orjson.dumps(doc))
    assert error.value.code is code
    assert detail in error.value.detail
    assert _schema_errors(doc)
