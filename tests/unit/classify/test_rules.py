"""worker.classify.rules and worker.classify.rulesfile: built-in rules, the rules file (JSON and TOML),
and layering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worker.classify.decide import classify
from worker.classify.rules import (
    BUILTIN_REPLIES,
    BUILTIN_RULES,
    Rule,
    RuleBook,
    default_rulebook,
)
from worker.classify.rulesfile import load_countries, load_rules, rulebook_from_document
from worker.errors import ConfigError
from worker.events.address import Countries
from worker.model import Intent, ScopeLevel


def _write(tmp_path: Path, doc: dict[str, Any], suffix: str = ".json") -> Path:
    path = tmp_path / f"rules{suffix}"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _rule_name(
    book: RuleBook, text: str, account: str = "acc", sub: str | None = None, sender: str = "S"
) -> str | None:
    match = classify(text, book.resolve(account, sub, sender))
    return None if match is None else match.rule.name


# --- built-in rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "keyword"), [(r, k) for r in BUILTIN_RULES for k in r.keywords])
def test_every_builtin_keyword_matches_its_rule(rule: Rule, keyword: str) -> None:
    match = classify(keyword, default_rulebook().resolve("any", None, "12345"))
    assert match is not None
    assert match.rule is rule
    assert match.keyword == keyword


def test_builtin_intents_and_scope() -> None:
    by_name = {r.name: r for r in BUILTIN_RULES}
    assert by_name["stop"].intent is Intent.OPT_OUT
    assert by_name["stop"].level is ScopeLevel.ACCOUNT
    assert not by_name["stop"].all_channels
    assert by_name["stop_all"].all_channels
    assert by_name["start"].intent is Intent.OPT_IN
    assert by_name["help"].intent is Intent.HELP


@pytest.mark.parametrize("path", [None, ""])
def test_no_rules_file_means_builtin_defaults(path: str | None) -> None:
    book = load_rules(path)
    assert set(book.base.table) == set(default_rulebook().base.table)
    assert dict(book.base.replies) == dict(default_rulebook().base.replies)
    assert _reply(book, "stop") == BUILTIN_REPLIES[Intent.OPT_OUT]


def test_ordinary_text_does_not_match() -> None:
    rules = default_rulebook().base
    assert classify("hello there", rules) is None
    assert classify("Don't stop!", rules) is None


# --- loading: JSON and TOML -----------------------------------------------------------------------

_DOC: dict[str, Any] = {
    "version": 1,
    "rules": [
        {"name": "halt", "intent": "opt_out", "keywords": ["HALT", "ARRET"], "level": "sender"},
        {"name": "halt_all", "intent": "opt_out", "keywords": ["HALT ALL"], "channels": "all"},
    ],
    "replies": {"help": "Call 555-0100 for help with {sender}."},
    "overrides": [
        {"account": "acc", "rules": [{"name": "pause", "intent": "opt_out", "keywords": ["PAUSE"]}]},
    ],
}

_TOML = """
version = 1

[[rules]]
name = "halt"
intent = "opt_out"
keywords = ["HALT", "ARRET"]
level = "sender"

[[rules]]
name = "halt_all"
intent = "opt_out"
keywords = ["HALT ALL"]
channels = "all"

[replies]
help = "Call 555-0100 for help with {sender}."

[[overrides]]
account = "acc"

[[overrides.rules]]
name = "pause"
intent = "opt_out"
keywords = ["PAUSE"]
"""


def _summary(book: RuleBook, account: str) -> dict[str, tuple[str, str, bool]]:
    rules = book.resolve(account, None, "S")
    return {key: (m.rule.name, m.rule.level.value, m.rule.all_channels) for key, m in rules.table.items()}


def test_json_file(tmp_path: Path) -> None:
    book = load_rules(_write(tmp_path, _DOC))
    assert _rule_name(book, "halt!") == "halt"
    assert _rule_name(book, "Halt all") == "halt_all"
    assert _rule_name(book, "stop") == "stop"  # built-ins still there (inherit defaults to true)
    assert _rule_name(book, "pause") == "pause"
    assert _rule_name(book, "pause", account="other") is None
    halt = classify("halt", book.base)
    assert halt is not None
    assert halt.rule.level is ScopeLevel.SENDER
    assert not halt.rule.all_channels
    halt_all = classify("halt all", book.base)
    assert halt_all is not None
    assert halt_all.rule.all_channels
    assert halt_all.rule.level is ScopeLevel.ACCOUNT


def test_toml_file_means_the_same_as_json(tmp_path: Path) -> None:
    toml_path = tmp_path / "rules.toml"
    toml_path.write_text(_TOML, encoding="utf-8")
    from_toml = load_rules(toml_path)
    from_json = load_rules(_write(tmp_path, _DOC))
    for account in ("acc", "other"):
        assert _summary(from_toml, account) == _summary(from_json, account)
    assert dict(from_toml.base.replies) == dict(from_json.base.replies)
    assert _reply(from_toml, "help", account="x") == "Call 555-0100 for help with {sender}."


def test_rulebook_from_document_equals_file(tmp_path: Path) -> None:
    assert _summary(rulebook_from_document(_DOC), "acc") == _summary(
        load_rules(_write(tmp_path, _DOC)), "acc"
    )


def _config_error(call: Any) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    assert info.value.retriable is False
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    message = _config_error(lambda: load_rules(path))
    assert str(path) in message
    assert "cannot read" in message


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"version": 1,', encoding="utf-8")
    message = _config_error(lambda: load_rules(path))
    assert str(path) in message
    assert "not valid" in message


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("version = = 1\n", encoding="utf-8")
    message = _config_error(lambda: load_rules(path))
    assert str(path) in message
    assert "not valid .toml" in message


def test_toml_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"version = 1\n# \xff\n")
    assert str(path) in _config_error(lambda: load_rules(path))


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({}, "at (top)"),
        ({"version": 2}, "at version"),
        ({"version": 1, "colour": "red"}, "at (top)"),
        ({"version": 1, "rules": [{"name": "x", "intent": "bogus", "keywords": ["X"]}]}, "at rules/0/intent"),
        (
            {"version": 1, "rules": [{"name": "x", "intent": "opt_out", "keywords": []}]},
            "at rules/0/keywords",
        ),
        (
            {"version": 1, "rules": [{"name": "x", "intent": "opt_out", "keywords": [""]}]},
            "at rules/0/keywords/0",
        ),
        (
            {
                "version": 1,
                "rules": [{"name": "x", "intent": "opt_out", "keywords": ["X"], "level": "planet"}],
            },
            "at rules/0/level",
        ),
        ({"version": 1, "replies": {"opt_out": 5}}, "at replies/opt_out"),
        ({"version": 1, "overrides": [{"subaccount": "s"}]}, "at overrides/0"),
        ({"version": 1, "overrides": [{"account": "a", "subaccount": "s", "sender": "x"}]}, "at overrides/0"),
    ],
)
def test_schema_errors_are_one_line_naming_file_and_path(
    tmp_path: Path, doc: dict[str, Any], where: str
) -> None:
    path = _write(tmp_path, doc)
    message = _config_error(lambda: load_rules(path))
    assert message.startswith(f"rules file {path}: {where}: "), message


def test_duplicate_keyword_in_one_layer(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "rules": [
            {"name": "first", "intent": "opt_out", "keywords": ["QUIT NOW"]},
            {"name": "second", "intent": "help", "keywords": ["quit  now!"]},
        ],
    }
    path = _write(tmp_path, doc)
    message = _config_error(lambda: load_rules(path))
    assert str(path) in message
    assert "'first'" in message
    assert "'second'" in message
    assert "quit  now!" in message


def test_duplicate_keyword_in_an_override_names_the_override(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "overrides": [
            {"account": "a"},
            {
                "account": "b",
                "rules": [
                    {"name": "one", "intent": "opt_out", "keywords": ["X"]},
                    {"name": "two", "intent": "opt_in", "keywords": ["x"]},
                ],
            },
        ],
    }
    message = _config_error(lambda: load_rules(_write(tmp_path, doc)))
    assert "overrides/1" in message


def test_same_keyword_in_different_layers_is_an_override_not_a_duplicate() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "rules": [{"name": "mine", "intent": "help", "keywords": ["STOP"]}],
            "overrides": [
                {"account": "acc", "rules": [{"name": "theirs", "intent": "opt_in", "keywords": ["stop"]}]}
            ],
        }
    )
    assert _rule_name(book, "stop", account="x") == "mine"
    assert _rule_name(book, "stop", account="acc") == "theirs"


def test_keyword_that_normalizes_to_nothing() -> None:
    message = _config_error(
        lambda: rulebook_from_document(
            {"version": 1, "rules": [{"name": "x", "intent": "opt_out", "keywords": ["!!!"]}]}
        )
    )
    assert "empty once normalized" in message


def test_duplicate_override() -> None:
    message = _config_error(
        lambda: rulebook_from_document(
            {"version": 1, "overrides": [{"account": "a", "sender": "S"}, {"account": "a", "sender": "S"}]}
        )
    )
    assert "overrides/1" in message
    assert "duplicate override" in message


# --- layering -------------------------------------------------------------------------------------


def _stop_rule(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "intent": "opt_out", "keywords": ["STOP"], **extra}


_LAYERED: dict[str, Any] = {
    "version": 1,
    "rules": [_stop_rule("file_stop"), {"name": "halt", "intent": "opt_out", "keywords": ["HALT"]}],
    "overrides": [
        {"account": "acc", "rules": [_stop_rule("account_stop")]},
        {"account": "acc", "subaccount": "sub", "rules": [_stop_rule("subaccount_stop")]},
        {"account": "acc", "sender": "12345", "rules": [_stop_rule("sender_stop")]},
        {"account": "acc", "subaccount": "quiet", "inherit": False, "rules": [_stop_rule("only_stop")]},
        {
            "account": "solo",
            "inherit": False,
            "rules": [{"name": "arret", "intent": "opt_out", "keywords": ["ARRET"]}],
        },
    ],
}


@pytest.mark.parametrize(
    ("account", "sub", "sender", "expected"),
    [
        ("elsewhere", None, "S", "file_stop"),  # file beats built-in
        ("elsewhere", "sub", "12345", "file_stop"),  # overrides are per account
        ("acc", None, "S", "account_stop"),  # account beats file
        ("acc", "other", "S", "account_stop"),
        ("acc", "sub", "S", "subaccount_stop"),  # subaccount beats account
        ("acc", None, "12345", "sender_stop"),  # sender beats account
        ("acc", "sub", "12345", "sender_stop"),  # sender beats subaccount
    ],
)
def test_layer_precedence(account: str, sub: str | None, sender: str, expected: str) -> None:
    book = rulebook_from_document(_LAYERED)
    assert _rule_name(book, "stop", account, sub, sender) == expected


def test_lower_layers_are_inherited_by_default() -> None:
    book = rulebook_from_document(_LAYERED)
    assert _rule_name(book, "halt", "acc", "sub", "12345") == "halt"  # from the file
    assert _rule_name(book, "start", "acc", "sub", "12345") == "start"  # built-in


def test_inherit_false_drops_every_lower_layer_for_that_scope_only() -> None:
    book = rulebook_from_document(_LAYERED)
    assert _rule_name(book, "stop", "acc", "quiet", "S") == "only_stop"
    assert _rule_name(book, "halt", "acc", "quiet", "S") is None  # file rule dropped
    assert _rule_name(book, "start", "acc", "quiet", "S") is None  # built-in dropped
    assert _rule_name(book, "arret", "solo") == "arret"
    assert _rule_name(book, "stop", "solo") is None
    assert _rule_name(book, "help", "solo") is None
    # Everyone else keeps them.
    assert _rule_name(book, "start", "acc", "sub", "S") == "start"
    assert _rule_name(book, "halt", "solo-not") == "halt"
    assert _rule_name(book, "arret", "acc") == "stop"  # the French pack's, not solo's


def test_top_level_inherit_false_drops_builtins() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "inherit": False,
            "rules": [{"name": "halt", "intent": "opt_out", "keywords": ["HALT"]}],
        }
    )
    assert _rule_name(book, "halt") == "halt"
    for builtin in ("stop", "start", "help", "unsubscribe"):
        assert _rule_name(book, builtin) is None


def test_accounts_without_overrides_share_the_base_set() -> None:
    book = rulebook_from_document(_LAYERED)
    assert book.resolve("elsewhere", "sub", "12345") is book.base
    first = book.resolve("acc", "sub", "12345")
    assert book.resolve("acc", "sub", "12345") is first
    # A subaccount/sender without its own override shares the account's compiled set.
    assert book.resolve("acc", "x", "y") is book.resolve("acc", "z", None)


# --- replies --------------------------------------------------------------------------------------


def _reply(
    book: RuleBook, text: str, account: str = "acc", sub: str | None = None, sender: str = "S"
) -> str | None:
    rules = book.resolve(account, sub, sender)
    match = classify(text, rules)
    assert match is not None
    return rules.reply_text(match)


def test_builtin_replies() -> None:
    book = default_rulebook()
    assert _reply(book, "stop") == BUILTIN_REPLIES[Intent.OPT_OUT]
    assert _reply(book, "start") == BUILTIN_REPLIES[Intent.OPT_IN]
    assert _reply(book, "help") == BUILTIN_REPLIES[Intent.HELP]


def test_replies_merge_per_intent_and_null_disables() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "replies": {"help": "File help."},
            "overrides": [
                {"account": "acc", "replies": {"opt_out": None}},
                {"account": "acc", "subaccount": "sub", "replies": {"opt_out": "Sub bye.", "opt_in": None}},
            ],
        }
    )
    assert _reply(book, "help", account="x") == "File help."
    assert _reply(book, "stop", account="x") == BUILTIN_REPLIES[Intent.OPT_OUT]
    assert _reply(book, "stop", account="acc") is None
    assert _reply(book, "help", account="acc") == "File help."
    assert _reply(book, "start", account="acc") == BUILTIN_REPLIES[Intent.OPT_IN]
    assert _reply(book, "stop", account="acc", sub="sub") == "Sub bye."
    assert _reply(book, "start", account="acc", sub="sub") is None


def test_rule_reply_beats_layer_reply_and_null_silences_the_rule() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "replies": {"opt_out": "Layer bye."},
            "rules": [
                {"name": "loud", "intent": "opt_out", "keywords": ["LOUD"], "reply": "Rule bye."},
                {"name": "quiet", "intent": "opt_out", "keywords": ["QUIET"], "reply": None},
                {"name": "plain", "intent": "opt_out", "keywords": ["PLAIN"]},
            ],
        }
    )
    assert _reply(book, "loud") == "Rule bye."
    assert _reply(book, "quiet") is None
    assert _reply(book, "plain") == "Layer bye."


def test_inherit_false_in_an_override_keeps_lower_replies() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "overrides": [
                {
                    "account": "acc",
                    "inherit": False,
                    "rules": [{"name": "halt", "intent": "opt_out", "keywords": ["HALT"]}],
                }
            ],
        }
    )
    assert _reply(book, "halt") == BUILTIN_REPLIES[Intent.OPT_OUT]


def test_top_level_inherit_false_keeps_builtin_replies() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "inherit": False,
            "rules": [{"name": "halt", "intent": "opt_out", "keywords": ["HALT"]}],
        }
    )
    assert _reply(book, "halt") == BUILTIN_REPLIES[Intent.OPT_OUT]


def test_provider_accounts_map_format_and_id_to_our_account() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "provider_accounts": [
                {"format": "twilio", "provider_account": "AC1", "account": "acme", "subaccount": "us"},
                {"format": "cmcom", "provider_account": "*", "account": "acme"},
            ],
        }
    )
    assert dict(book.provider_accounts) == {("twilio", "AC1"): ("acme", "us"), ("cmcom", "*"): ("acme", None)}
    assert book.uniform  # a mapping is no rule override


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"format": "sms", "provider_account": "x", "account": "a"}], "provider_accounts/0/format"),
        ([{"format": "twilio", "provider_account": "x"}], "'account' is a required property"),
        ([{"format": "twilio", "provider_account": "x", "account": "a\x00"}], "provider_accounts/0/account"),
        ([{"format": "twilio", "provider_account": "x", "account": "a"}] * 2, "mapped twice"),
    ],
)
def test_bad_provider_accounts_are_one_line_naming_the_entry(
    items: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        rulebook_from_document({"version": 1, "provider_accounts": items}, origin="r.json")
    assert "\n" not in str(error.value)
    assert "r.json" in str(error.value)


# -- default countries (worker.events.address: national numbers) ---------------------------------


def test_default_countries_top_level_and_per_account(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "default_country": "GB",
        "overrides": [
            {"account": "acme-us", "default_country": "US"},
            {"account": "plain", "languages": ["en"]},
        ],
    }
    path = _write(tmp_path, doc)
    book = load_rules(path)
    assert book.resolve("acme-us", "sub", "12345").default_country == "US"
    assert book.resolve("plain", None, None).default_country == "GB"
    assert book.resolve("anyone", None, None).default_country == "GB"
    assert load_countries(path) == book.countries
    assert (book.countries.of("acme-us"), book.countries.of("plain")) == ("US", "GB")
    assert load_countries(None) == load_countries("") == Countries()
    assert default_rulebook().base.default_country is None


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"version": 1, "default_country": "gb"}, "at default_country: 'gb' does not match"),
        (
            {"version": 1, "default_country": "UK"},
            "top level: default_country 'UK' is not an ISO 3166 alpha-2",
        ),
        (
            {"version": 1, "overrides": [{"account": "a", "default_country": "XX"}]},
            "overrides/0: default_country 'XX' is not an ISO 3166 alpha-2",
        ),
        (
            {"version": 1, "overrides": [{"account": "a", "sender": "12345", "default_country": "US"}]},
            "overrides/0: default_country is per account",
        ),
        (
            {"version": 1, "overrides": [{"account": "a", "subaccount": "s", "default_country": "US"}]},
            "overrides/0: default_country is per account",
        ),
    ],
)
def test_a_bad_default_country_is_one_line(tmp_path: Path, doc: dict[str, Any], expected: str) -> None:
    path = _write(tmp_path, doc)
    message = _config_error(lambda: load_rules(path))
    assert str(path) in message
    assert expected in message


def test_sender_overrides_are_keyed_by_the_canonical_sender() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "overrides": [{"account": "a", "sender": "whatsapp:+1 415 523 8886", "languages": ["fr"]}],
        }
    )
    assert set(book.senders) == {("a", "+14155238886")}
    for written in ("+14155238886", "whatsapp:+14155238886", "WhatsApp:+14155238886"):
        assert book.resolve("a", None, written).languages == ("fr",)
    assert book.resolve("a", None, "12345").languages == book.base.languages
