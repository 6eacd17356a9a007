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
from worker.events.address import Countries, canonical_sender, supported_regions
from worker.events.fields import field_problem
from worker.model import Category, Intent, MatchMode, ScopeLevel


def load_rules(path: str | Path | None) -> RuleBook:
    """The built-in defaults, or the rules file at ``path`` layered on them.

    Raises :class:`ConfigError` with one line naming the file and the problem.
    """
    if path is None or str(path) == "":
        return default_rulebook()
    return rulebook_from_document(_read(Path(path)), origin=str(path))


def load_countries(path: str | Path | None) -> Countries:
    """The default countries of the rules file at ``path`` (none without a file): what a send
    service gives :meth:`worker.sender.BlocklistView.open` so that it canonicalizes national
    numbers as the classifier does. The whole file is validated, as :func:`load_rules` does."""
    if path is None or str(path) == "":
        return Countries()
    return load_rules(path).countries


def _read(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"rules file {path}: cannot read: {exc.strerror}") from None
    return _document(raw, path)


def parse_rules(raw: bytes, path: Path) -> RuleBook:
    """The rules file ``path`` whose bytes are ``raw``, layered on the built-ins: the bytes are
    passed in so a reload validates and hashes one and the same read of a file being rewritten."""
    return rulebook_from_document(_document(raw, path), origin=str(path))


def _document(raw: bytes, path: Path) -> Any:
    try:
        return tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rules file {path}: not valid {path.suffix or 'JSON'}: {exc}") from None


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
    countries: dict[str, str] = {}
    for i, item in enumerate(doc.get("overrides", [])):
        account, sub, sender = item["account"], item.get("subaccount"), item.get("sender")
        if sender is not None:
            sender = canonical_sender(sender)[0]  # as the classifier resolves it
        if "default_country" in item:
            if sub is not None or sender is not None:
                raise ConfigError(
                    f"rules file {origin}: overrides/{i}: default_country is per account: set it "
                    f'in an override with only "account": {account!r} (a subscriber is one '
                    "identity whichever subaccount or sender they write to)"
                )
            countries[account] = item["default_country"]
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
    return RuleBook(
        compile_layers(base_layers),
        base_layers,
        accounts,
        subaccounts,
        senders,
        provider_accounts=_provider_accounts(doc.get("provider_accounts", []), origin),
        countries=Countries(top.default_country, MappingProxyType(countries)),
    )


def _provider_accounts(
    items: list[dict[str, str]], origin: str
) -> dict[tuple[str, str], tuple[str, str | None]]:
    """``provider_accounts``: which of our accounts a provider's account id stands for. Checked
    here, not when the first MO arrives: an account id that cannot be a key would otherwise
    dead-letter every message of that provider account."""
    out: dict[tuple[str, str], tuple[str, str | None]] = {}
    for i, item in enumerate(items):
        key = (item["format"], item["provider_account"])
        if key in out:
            raise ConfigError(
                f"rules file {origin}: provider_accounts/{i}: format {key[0]} provider_account {key[1]!r} "
                "is mapped twice"
            )
        for name in ("account", "subaccount"):
            problem = field_problem(item[name]) if name in item else None
            if problem is not None:
                raise ConfigError(f"rules file {origin}: provider_accounts/{i}/{name} {problem}")
        out[key] = (item["account"], item.get("subaccount"))
    return out


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
        default_country=_country(doc.get("default_country"), where),
    )


def _country(code: str | None, where: str) -> str | None:
    """A default country the schema let through (two capitals) that ``phonenumbers`` knows."""
    if code is not None and code not in supported_regions():
        raise ConfigError(
            f"rules file {where}: default_country {code!r} is not an ISO 3166 alpha-2 country "
            'with a telephone numbering plan (e.g. "GB", "US", "DE")'
        )
    return code


def _texts(value: str | Mapping[str, str | None] | None) -> Reply:
    """A reply as the file writes it: one text (or null) for every language, or texts per language."""
    if value is None or isinstance(value, str):
        return value
    return MappingProxyType(dict(value))
