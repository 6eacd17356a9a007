"""Every decoder, whatever it is given: a list of canonical documents, or an InputError; never any
other exception (it would stop the classifier's batch). And what it returns is canonical."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.events.providers import payloads
from worker.errors import InputError
from worker.events import inbound
from worker.events.providers import FORMAT_NAMES, Decoded
from worker.events.providers.registry import DECODERS
from worker.events.schemas import INBOUND, validator

SAMPLES: dict[str, list[bytes]] = {
    "canonical": [
        orjson.dumps(
            {
                "message_id": "m",
                "channel": "sms",
                "from": "+1",
                "to": "2",
                "account_id": "a",
                "text": "STOP",
                "received_at": "2026-11-24T12:00:00Z",
                "intent": "opt_out",
            }
        )
    ],
    "eightbyeight": [orjson.dumps(payloads.EIGHTBYEIGHT_SMS), orjson.dumps(payloads.EIGHTBYEIGHT_CHAT)],
    "infobip": [payloads.infobip_body("STOP", "hi")],
    "twilio": [payloads.twilio_form()],
    "cmcom": [orjson.dumps(payloads.CMCOM)],
    "whatsapp": [payloads.whatsapp_button(), payloads.whatsapp_preference()],
}
ACCOUNTS = {("twilio", "*"): ("acme", None), ("infobip", "385921004026"): ("acme", "eu")}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


def _check(fmt: str, raw: bytes | None, stamp: int = 1764000000000) -> list[Decoded]:
    try:
        decoded = DECODERS[fmt](raw, stamp, ACCOUNTS)
    except InputError:
        return []
    for doc, received in decoded:
        assert list(validator(INBOUND).iter_errors(doc)) == []
        assert inbound.decode(orjson.dumps(doc)) == (doc, received)
    return decoded


def test_every_format_has_samples_that_decode() -> None:
    assert set(SAMPLES) == set(FORMAT_NAMES) == set(DECODERS)
    for fmt, raws in SAMPLES.items():
        for raw in raws:
            assert _check(fmt, raw), fmt


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@given(raw=st.binary(max_size=200) | st.none(), stamp=st.integers(-(2**63), 2**63 - 1))
@settings(max_examples=150, deadline=None)
def test_any_bytes(fmt: str, raw: bytes | None, stamp: int) -> None:
    _check(fmt, raw, stamp)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*path, i))
    return out


@pytest.mark.parametrize("fmt", [f for f in FORMAT_NAMES if f != "twilio"])
@given(data=st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_documented_payloads_with_any_value_anywhere(fmt: str, data: st.DataObject) -> None:
    """A documented body with one value (or the whole body) replaced by any JSON value."""
    body = orjson.loads(data.draw(st.sampled_from(SAMPLES[fmt])))
    path = data.draw(st.sampled_from(_paths(body)))
    replacement = data.draw(json_values)
    if not path:
        body = replacement
    else:
        target = copy.deepcopy(body)
        parent = target
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = replacement
        body = target
    _check(fmt, orjson.dumps(body))


@given(fields=st.dictionaries(st.sampled_from(sorted(payloads.TWILIO)), st.text(max_size=30), max_size=25))
@settings(max_examples=200, deadline=None)
def test_twilio_forms_with_any_fields(fields: dict[str, str]) -> None:
    _check("twilio", urlencode(payloads.TWILIO | fields).encode())
    _check("twilio", urlencode(fields).encode())
