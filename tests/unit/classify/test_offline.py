from __future__ import annotations

import orjson

from tests.unit.factories import inbound_json
from worker.classify.offline import classify_lines
from worker.classify.rules import default_rulebook


def _line(message_id: str, text: str, **extra: str) -> bytes:
    return inbound_json(text, message_id=message_id, **extra) + b"\n"


def test_one_output_line_per_input_line_in_order_and_errors_do_not_stop_the_run() -> None:
    lines = [
        _line("m1", "Stop."),
        b"this is not json\n",
        _line("m2", "Don't stop!"),
        b"\n",
        _line("m3", "ＳＴＯＰ"),
        _line("m4", "unstop"),
        _line("m5", "INFO"),
        b'{"message_id": "m6", "channel": "sms"}\n',
    ]
    out = [orjson.loads(line) for line in classify_lines(lines, default_rulebook())]
    assert [o.get("message_id") for o in out] == ["m1", None, "m2", "m3", "m4", "m5", "m6"]
    assert [(o.get("intent"), o.get("keyword")) for o in out] == [
        ("opt_out", "STOP"),
        (None, None),
        ("none", None),
        ("opt_out", "STOP"),
        ("opt_in", "UNSTOP"),
        ("help", "INFO"),
        (None, None),
    ]
    assert out[1]["error"]["code"] == "invalid_json"
    assert out[6]["error"] == {"code": "missing_field", "detail": "required field 'from' is missing"}
    assert out[0]["changes"] == [
        {
            "action": "block",
            "scope": {"level": "account", "account_id": "acme", "subaccount_id": None, "sender": None,
                      "channel": "sms"},
            "address": "+15550000001",
        }
    ]  # fmt: skip
    assert out[0]["reply"].startswith("You are unsubscribed")
    assert out[2]["changes"] == []
    assert out[2]["reply"] is None
    assert {c["action"] for c in out[4]["changes"]} == {"unblock"}


def test_output_says_rule_match_mode_and_language() -> None:
    lines = [_line("m1", "ARRET svp"), _line("m2", "please take me off your list"), _line("m3", "ok")]
    out = [orjson.loads(line) for line in classify_lines(lines, default_rulebook())]
    assert [(o["rule"], o["match"], o["language"]) for o in out] == [
        ("stop", "leading", "fr"),
        ("stop_phrase", "phrase", "en"),
        (None, None, None),
    ]
    assert out[0]["reply"].startswith("Vous êtes désabonné")
