"""Rules files: read a JSON or TOML file, validate it against ``schemas/rules.v1.json``, and build
the :class:`~worker.classify.rules.RuleBook` of its layers (compilation itself is
:mod:`worker.classify.rules`).

A problem in the file raises :class:`ConfigError` with one line naming the file, where in it, and
what is wrong: the classifier checks the file before it opens any connection.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from worker.classify.normalize import normalize
from worker.classify.rules import (
    BUILTIN_LAYER,
    Layer,
    Reply,
    Rule,
    RuleBook,
    compile_layers,
    default_rulebook,
)
from worker.errors import ConfigError
from worker.events import schemas
from worker.model import Category, Intent, MatchMode, ScopeLevel


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
                reply=_texts(item["reply"]) if "reply" in item else None,
                has_reply_override="reply" in item,
                match=MatchMode(item.get("match", MatchMode.LEADING)),
                language=item.get("language"),
                category=Category(item.get("category", Category.ALL)),
            )
        )
    replies = {Intent(k): _texts(v) for k, v in doc.get("replies", {}).items()}
    languages = tuple(doc["languages"]) if "languages" in doc else None
    return Layer(
        doc.get("inherit", True),
        tuple(rules),
        MappingProxyType(replies),
        languages,
        wrong_number=doc.get("wrong_number"),
    )


def _texts(value: str | Mapping[str, str | None] | None) -> Reply:
    """A reply as the file writes it: one text (or null) for every language, or texts per language."""
    if value is None or isinstance(value, str):
        return value
    return MappingProxyType(dict(value))
