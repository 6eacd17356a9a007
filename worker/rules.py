"""Keyword rules: the built-in defaults, the rules file, and per-account/subaccount/sender layering.

Loading validates the file against ``schemas/rules.v1.json`` and then compiles each distinct layer
stack into a :class:`RuleSet` whose keyword table is a dict keyed by normalized keyword, so the
hot path does one dict lookup per message. Resolution is cached: accounts without overrides share
the base set and pay one set-membership test.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from worker import schemas
from worker.errors import ConfigError
from worker.model import Intent, ScopeLevel
from worker.normalize import normalize


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    intent: Intent
    keywords: tuple[str, ...]
    level: ScopeLevel = ScopeLevel.ACCOUNT
    all_channels: bool = False
    reply: str | None = None
    """Reply text for this rule; ``None`` means "use the layer's reply for the intent"."""
    has_reply_override: bool = False
    """True when the rules file set ``reply`` on this rule (possibly to null: no reply)."""


@dataclass(frozen=True, slots=True)
class Match:
    """A message that matched ``keyword`` (as written in the rules) of ``rule``."""

    rule: Rule
    keyword: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The compiled rules that apply to one (account, subaccount, sender)."""

    table: Mapping[str, Match]
    replies: Mapping[Intent, str | None]

    def reply_text(self, match: Match) -> str | None:
        if match.rule.has_reply_override:
            return match.rule.reply
        return self.replies.get(match.rule.intent)


BUILTIN_RULES: tuple[Rule, ...] = (
    Rule(
        "stop",
        Intent.OPT_OUT,
        ("STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"),
    ),
    Rule("stop_all", Intent.OPT_OUT, ("STOPALL", "STOP ALL"), all_channels=True),
    Rule("start", Intent.OPT_IN, ("START", "UNSTOP")),
    Rule("help", Intent.HELP, ("HELP", "INFO")),
)

BUILTIN_REPLIES: Mapping[Intent, str | None] = MappingProxyType(
    {
        Intent.OPT_OUT: "You are unsubscribed and will get no more messages from {sender}. "
        "Reply START to resubscribe.",
        Intent.OPT_IN: "You are subscribed again to messages from {sender}. "
        "Reply STOP to unsubscribe, HELP for help.",
        Intent.HELP: "Reply STOP to unsubscribe or START to resubscribe. Msg&data rates may apply.",
    }
)


@dataclass(frozen=True, slots=True)
class Layer:
    inherit: bool
    rules: tuple[Rule, ...]
    replies: Mapping[Intent, str | None]


@dataclass(slots=True)
class RuleBook:
    """All layers from the rules file; :meth:`resolve` answers which rules apply to a message."""

    base: RuleSet
    base_layers: tuple[Layer, ...]
    accounts: dict[str, Layer] = field(default_factory=dict)
    subaccounts: dict[tuple[str, str], Layer] = field(default_factory=dict)
    senders: dict[tuple[str, str], Layer] = field(default_factory=dict)
    _overridden: frozenset[str] = frozenset()
    _cache: dict[tuple[str, str | None, str | None], RuleSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._overridden = frozenset(
            [*self.accounts, *(a for a, _ in self.subaccounts), *(a for a, _ in self.senders)]
        )

    def resolve(self, account_id: str, subaccount_id: str | None, sender: str | None) -> RuleSet:
        if account_id not in self._overridden:
            return self.base
        sub_key = (account_id, subaccount_id or "")
        snd_key = (account_id, sender or "")
        key = (
            account_id,
            subaccount_id if sub_key in self.subaccounts else None,
            sender if snd_key in self.senders else None,
        )
        cached = self._cache.get(key)
        if cached is None:
            specific = (
                self.accounts.get(account_id),
                self.subaccounts.get(sub_key),
                self.senders.get(snd_key),
            )
            layers = [*self.base_layers, *(layer for layer in specific if layer is not None)]
            cached = self._cache[key] = compile_layers(layers)
        return cached


def compile_layers(layers: Iterable[Layer]) -> RuleSet:
    table: dict[str, Match] = {}
    replies: dict[Intent, str | None] = {}
    for layer in layers:
        if not layer.inherit:
            table.clear()
        for rule in layer.rules:
            for keyword in rule.keywords:
                table[normalize(keyword)] = Match(rule, keyword)
        replies.update(layer.replies)
    return RuleSet(MappingProxyType(table), MappingProxyType(replies))


BUILTIN_LAYER = Layer(True, BUILTIN_RULES, BUILTIN_REPLIES)


def default_rulebook() -> RuleBook:
    return RuleBook(compile_layers([BUILTIN_LAYER]), (BUILTIN_LAYER,))


def load_rules(path: str | Path | None) -> RuleBook:
    """The built-in defaults, or the rules file at ``path`` layered on them.

    Raises :class:`ConfigError` with one line naming the file and the problem.
    """
    if path is None or str(path) == "":
        return default_rulebook()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"rules file {path}: cannot read: {exc.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rules file {path}: not valid {path.suffix or 'JSON'}: {exc}") from None
    return rulebook_from_document(doc, origin=str(path))


def rulebook_from_document(doc: Any, origin: str = "rules") -> RuleBook:
    error = next(iter(sorted(schemas.validator(schemas.RULES).iter_errors(doc), key=str)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise ConfigError(f"rules file {origin}: at {where}: {error.message}")
    top = _layer(doc, f"{origin}: top level")
    # Always stack on the built-ins: compile_layers drops their *rules* when top.inherit is false,
    # but their replies still merge, as the schema documents.
    base_layers = (BUILTIN_LAYER, top)
    accounts: dict[str, Layer] = {}
    subaccounts: dict[tuple[str, str], Layer] = {}
    senders: dict[tuple[str, str], Layer] = {}
    seen: set[tuple[str, str | None, str | None]] = set()
    for i, item in enumerate(doc.get("overrides", [])):
        account, sub, sender = item["account"], item.get("subaccount"), item.get("sender")
        if (account, sub, sender) in seen:
            raise ConfigError(
                f"rules file {origin}: overrides/{i}: duplicate override for "
                f"account={account} subaccount={sub} sender={sender}"
            )
        seen.add((account, sub, sender))
        layer = _layer(item, f"{origin}: overrides/{i}")
        if sub is not None:
            subaccounts[(account, sub)] = layer
        elif sender is not None:
            senders[(account, sender)] = layer
        else:
            accounts[account] = layer
    return RuleBook(compile_layers(base_layers), base_layers, accounts, subaccounts, senders)


def _layer(doc: Mapping[str, Any], where: str) -> Layer:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for item in doc.get("rules", []):
        keywords = tuple(item["keywords"])
        for keyword in keywords:
            key = normalize(keyword)
            if not key:
                raise ConfigError(
                    f"rules file {where}: rule {item['name']!r}: keyword {keyword!r} is empty once normalized"
                )
            if key in seen:
                raise ConfigError(
                    f"rules file {where}: keyword {keyword!r} is in both rule "
                    f"{seen[key]!r} and rule {item['name']!r}"
                )
            seen[key] = item["name"]
        rules.append(
            Rule(
                name=item["name"],
                intent=Intent(item["intent"]),
                keywords=keywords,
                level=ScopeLevel(item.get("level", "account")),
                all_channels=item.get("channels", "same") == "all",
                reply=item.get("reply"),
                has_reply_override="reply" in item,
            )
        )
    replies = {Intent(k): v for k, v in doc.get("replies", {}).items()}
    return Layer(doc.get("inherit", True), tuple(rules), MappingProxyType(replies))
