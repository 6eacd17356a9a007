"""Evaluation of the classifier on a labeled corpus: precision and recall, and the issue's targets.

Pure: samples and a rule set in, a :class:`Report` out; ``optout classify --eval FILE`` reads the
file and prints :func:`format_report`. The corpus format is one JSON object per line::

    {"text": "...", "intent": "opt_out|opt_in|help|none", "language": "en", "category": "keyword"}

with ``category`` one of ``keyword`` (a bare standard keyword), ``surface`` (the same in another
surface form: case, punctuation, quotes, spacing, full-width, emoji, invisible characters),
``leading`` (a keyword with a brand, number or courtesy), ``phrase`` (a request in the
subscriber's own words) and ``ordinary`` (chat; intent ``none``).

The fresh held-out set (``tests/corpus/fresh.jsonl``) writes ``group`` instead of ``category``
(:data:`GROUPS`), and is then held to issue 15's targets. A labeled review record is a line of the
review topic (``schemas/review-request.v1.json``) with a ``label`` added by the person who read it::

    {"schema": "optout.review-request.v1", "text": "stoop", ..., "label": "none"}

and is read as a sample of group ``review`` (its language: the record's, else its first candidate's).

A prediction counts as right only when its intent equals the label: an opt-in read as an opt-out
is a false positive of ``opt_out`` and a false negative of ``opt_in``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from worker.classify.decide import classify
from worker.classify.rules import RuleSet
from worker.errors import ConfigError
from worker.model import Intent

CATEGORIES = ("keyword", "surface", "leading", "phrase", "ordinary")
#: The groups of the fresh held-out set (tests/corpus/fresh.jsonl), given as ``group`` instead of
#: ``category``: how a message is built, written by an author who never saw the packs.
GROUPS = ("typo", "complaint", "wrong_number", "short_want", "hard_negative", "other", "review")


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    intent: Intent
    language: str
    category: str


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    value: float
    goal: str
    passed: bool


@dataclass(slots=True)
class Tally:
    """True positives, false positives and false negatives of one intent (or of "any keyword")."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    support: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass(frozen=True, slots=True)
class Outcome:
    sample: Sample
    predicted: Intent
    rule: str | None
    mode: str | None
    language: str | None


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    by_intent: dict[Intent, Tally] = field(default_factory=dict)
    by_language: dict[str, Tally] = field(default_factory=dict)
    """Per labeled language, any non-``none`` intent: right intent = tp, else fp/fn."""
    by_category: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per category, (right, total)."""
    targets: list[Target] = field(default_factory=list)

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.predicted is not o.sample.intent]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)


def load_corpus(lines: Iterable[bytes], origin: str = "corpus") -> list[Sample]:
    """Parse corpus lines; a bad line raises :class:`ConfigError` naming it."""
    samples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            if "label" in doc:  # a labeled review record (schemas/review-request.v1.json + "label")
                language = doc.get("language") or doc["candidates"][0]["language"]
                sample = Sample(str(doc["text"]), Intent(doc["label"]), str(language), "review")
            else:
                category = doc["category"] if "category" in doc else doc["group"]
                sample = Sample(str(doc["text"]), Intent(doc["intent"]), str(doc["language"]), str(category))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}:{number}: not a corpus line: {type(exc).__name__}: {exc}") from None
        if sample.category not in CATEGORIES + GROUPS:
            raise ConfigError(
                f"{origin}:{number}: category {sample.category!r} is not one of {CATEGORIES + GROUPS}"
            )
        samples.append(sample)
    return samples


def evaluate(samples: Iterable[Sample], rules: RuleSet) -> Report:
    report = Report()
    for intent in Intent:
        report.by_intent[intent] = Tally()
    for sample in samples:
        match = classify(sample.text, rules)
        predicted = Intent.NONE if match is None else match.rule.intent
        report.outcomes.append(
            Outcome(
                sample,
                predicted,
                None if match is None else match.rule.name,
                None if match is None else match.mode.value,
                None if match is None else match.language,
            )
        )
        truth = sample.intent
        report.by_intent[truth].support += 1
        if predicted is truth:
            report.by_intent[truth].tp += 1
        else:
            report.by_intent[truth].fn += 1
            report.by_intent[predicted].fp += 1
        language = report.by_language.setdefault(sample.language, Tally())
        language.support += 1
        if truth is not Intent.NONE and predicted is truth:
            language.tp += 1
        else:
            language.fn += truth is not Intent.NONE
            language.fp += predicted is not Intent.NONE
        right, total = report.by_category.get(sample.category, (0, 0))
        report.by_category[sample.category] = (right + (predicted is truth), total + 1)
    report.targets = _targets(report.outcomes)
    return report


def _targets(outcomes: list[Outcome]) -> list[Target]:
    def share(selected: list[Outcome], right: bool) -> float:
        if not selected:
            return 1.0 if right else 0.0
        return sum((o.predicted is o.sample.intent) is right for o in selected) / len(selected)

    keywords = [
        o
        for o in outcomes
        if o.sample.category in ("keyword", "surface") and o.sample.intent is not Intent.NONE
    ]
    ordinary = [o for o in outcomes if o.sample.intent is Intent.NONE]
    phrases = [o for o in outcomes if o.sample.category == "phrase" and o.sample.intent is not Intent.NONE]
    grouped = [o for o in outcomes if o.sample.category in GROUPS]
    if grouped:
        return _group_targets(grouped)
    keyword_recall = share(keywords, True)
    false_positives = share(ordinary, False)
    phrase_recall = share(phrases, True)
    return [
        Target(
            f"recall on standard keywords in every surface form ({len(keywords)})",
            keyword_recall,
            "= 100%",
            keyword_recall == 1.0,
        ),
        Target(
            f"false positives on ordinary replies ({len(ordinary)})",
            false_positives,
            "<= 1%",
            false_positives <= 0.01,
        ),
        Target(
            f"recall on phrased requests ({len(phrases)})", phrase_recall, ">= 95%", phrase_recall >= 0.95
        ),
    ]


def _group_targets(outcomes: list[Outcome]) -> list[Target]:
    """Issue 15's targets for a corpus of groups: overall, hard negatives, and every group."""
    right = sum(o.predicted is o.sample.intent for o in outcomes)
    overall = right / len(outcomes)
    hard = [o for o in outcomes if o.sample.category == "hard_negative"]
    false_positives = sum(o.predicted is not Intent.NONE for o in hard)
    targets = [
        Target(f"overall ({len(outcomes)})", overall, ">= 97%", overall >= 0.97),
        Target(
            f"false positives on hard negatives ({len(hard)}): {false_positives}",
            false_positives / len(hard) if hard else 0.0,
            "at most one",
            false_positives <= 1,
        ),
    ]
    for group in GROUPS:
        selected = [o for o in outcomes if o.sample.category == group]
        if selected:
            share = sum(o.predicted is o.sample.intent for o in selected) / len(selected)
            targets.append(Target(f"group {group} ({len(selected)})", share, ">= 90%", share >= 0.9))
    return targets


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{value * 100:5.1f}"


def format_report(report: Report, max_errors: int = 100) -> str:
    lines = [f"{len(report.outcomes)} messages", "", "intent      precision  recall  support"]
    for intent, tally in report.by_intent.items():
        lines.append(
            f"{intent.value:<10}  {_pct(tally.precision)}%   {_pct(tally.recall)}%  {tally.support:>7}"
        )
    lines += [
        "",
        "language    precision  recall  support   (any keyword intent; ordinary lines count as fp only)",
    ]
    for language, tally in sorted(report.by_language.items()):
        lines.append(f"{language:<10}  {_pct(tally.precision)}%   {_pct(tally.recall)}%  {tally.support:>7}")
    lines += ["", "category    correct"]
    for category in CATEGORIES + GROUPS:
        if category in report.by_category:
            right, total = report.by_category[category]
            lines.append(f"{category:<13}  {right}/{total} ({right / total * 100:.1f}%)")
    lines += ["", "targets"]
    for target in report.targets:
        verdict = "PASS" if target.passed else "FAIL"
        lines.append(f"  {verdict}  {target.name}: {target.value * 100:.1f}% (target {target.goal})")
    errors = report.errors
    if errors:
        lines += ["", f"misclassified ({len(errors)}):"]
        for o in errors[:max_errors]:
            s = o.sample
            got = (
                o.predicted.value
                if o.rule is None
                else f"{o.predicted.value} ({o.rule}, {o.mode}, {o.language})"
            )
            lines.append(f"  [{s.language} {s.category}] {s.text!r}: expected {s.intent.value}, got {got}")
        if len(errors) > max_errors:
            lines.append(f"  ... and {len(errors) - max_errors} more")
    return "\n".join(lines)
