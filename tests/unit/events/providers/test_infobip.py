"""Infobip ``results[]`` bodies (the documented MO_JSON_2 example, in payloads.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tests.unit.events.providers.payloads import INFOBIP, infobip_body
from worker.errors import DeadLetterCode, InputError
from worker.events.providers.infobip import decode


def test_the_documented_example_is_one_mo() -> None:
    [(doc, received)] = decode(orjson.dumps(INFOBIP), 0, {})
    assert doc == {
        "message_id": "817790313235066447",
        "channel": "sms",
        "from": "385916242493",
        "to": "385921004026",
        "account_id": "infobip:385921004026",
        "text": "QUIZ Correct answer is Paris",
        "received_at": "2019-11-09T16:00:00.000+00:00",  # Infobip's +0000, read as +00:00
    }
    assert received == datetime(2019, 11, 9, 16, 0, tzinfo=UTC)


def test_one_body_several_mos_in_order() -> None:
    docs = decode(infobip_body("STOP", "hello", "START"), 0, {})
    assert [d["text"] for d, _ in docs] == ["STOP", "hello", "START"]
    assert len({d["message_id"] for d, _ in docs}) == 3


def test_an_empty_results_array_is_no_mo_and_no_error() -> None:
    assert decode(b'{"results": [], "messageCount": 0, "pendingMessageCount": 0}', 0, {}) == []


def test_the_receiving_number_maps_to_an_account_and_star_maps_the_rest() -> None:
    accounts = {("infobip", "385921004026"): ("acme", "eu"), ("infobip", "*"): ("other", None)}
    [(doc, _)] = decode(infobip_body("STOP"), 0, accounts)
    assert (doc["account_id"], doc["subaccount_id"]) == ("acme", "eu")
    [(doc, _)] = decode(infobip_body("STOP", sender="4915112345"), 0, accounts)
    assert doc["account_id"] == "other"
    assert "subaccount_id" not in doc


@pytest.mark.parametrize(
    ("change", "code", "detail"),
    [
        ({"from": None}, DeadLetterCode.INVALID_FIELD, "results[1].from"),
        ({"messageId": ""}, DeadLetterCode.INVALID_FIELD, "results[1].messageId"),
        ({"receivedAt": "2019-11-09 16:00:00"}, DeadLetterCode.INVALID_TIMESTAMP, "results[1]: received_at"),
        ({"from": "+1\x00"}, DeadLetterCode.INVALID_FIELD, "results[1]: field 'from'"),
    ],
)
def test_one_bad_result_dead_letters_the_body(
    change: dict[str, object], code: DeadLetterCode, detail: str
) -> None:
    body = orjson.loads(infobip_body("STOP", "STOP"))
    body["results"][1].update(change)
    with pytest.raises(InputError) as error:
        decode(orjson.dumps(body), 0, {})
    assert error.value.code is code
    assert detail in error.value.detail


def test_a_missing_field_is_named_as_infobip_names_it() -> None:
    body = orjson.loads(infobip_body("STOP"))
    del body["results"][0]["receivedAt"]
    with pytest.raises(InputError, match=r"'results\[0\].receivedAt' is missing") as error:
        decode(orjson.dumps(body), 0, {})
    assert error.value.code is DeadLetterCode.MISSING_FIELD


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", DeadLetterCode.EMPTY_VALUE),
        (b"\xff", DeadLetterCode.INVALID_UTF8),
        (b"{", DeadLetterCode.INVALID_JSON),
        (b"[]", DeadLetterCode.NOT_AN_OBJECT),
        (b"{}", DeadLetterCode.MISSING_FIELD),
        (b'{"results": {}}', DeadLetterCode.INVALID_FIELD),
        (b'{"results": [1]}', DeadLetterCode.INVALID_FIELD),
    ],
)
def test_bodies_that_are_not_infobip_mo(raw: bytes, code: DeadLetterCode) -> None:
    with pytest.raises(InputError) as error:
        decode(raw, 0, {})
    assert error.value.code is code
