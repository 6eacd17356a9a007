"""worker.classify.evaluation and ``optout classify --eval``: metrics, targets, and the labeled corpus."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from worker.classify.evaluation import Sample, evaluate, format_report, load_corpus
from worker.classify.rules import default_rulebook
from worker.cli import main
from worker.errors import ConfigError
from worker.model import Intent

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "labeled.jsonl"
BASE = default_rulebook().base


def _line(text: str, intent: str, language: str = "en", category: str = "keyword") -> bytes:
    return orjson.dumps({"text": text, "intent": intent, "language": language, "category": category})


def test_the_labeled_corpus_meets_the_issue_targets() -> None:
    """The real check: fails when a target is missed on tests/corpus/labeled.jsonl."""
    samples = load_corpus(CORPUS.read_bytes().splitlines(), str(CORPUS))
    assert len(samples) >= 400
    assert {s.language for s in samples} >= {"en", "es", "fr", "de", "pt", "it", "nl"}
    report = evaluate(samples, BASE)
    assert report.passed, format_report(report)


def test_metrics_per_intent_language_and_category() -> None:
    samples = load_corpus(
        [
            _line("STOP", "opt_out"),
            _line("stop by later?", "none", category="ordinary"),
            _line("please remove me from the list", "opt_out", category="phrase"),
            _line("sign me up for the class", "opt_in", category="phrase"),  # missed: an fn of opt_in
            _line("BAJA", "opt_out", "es"),
            _line("ARRET", "opt_in", "fr"),  # mislabeled on purpose: fp of opt_out, fn of opt_in
        ]
    )
    report = evaluate(samples, BASE)
    out = report.by_intent[Intent.OPT_OUT]
    assert (out.tp, out.fp, out.fn, out.support) == (3, 1, 0, 3)
    assert out.precision == 0.75
    assert out.recall == 1.0
    opt_in = report.by_intent[Intent.OPT_IN]
    assert (opt_in.tp, opt_in.fn, opt_in.recall) == (0, 2, 0.0)
    assert report.by_language["es"].recall == 1.0
    assert report.by_language["fr"].precision == 0.0
    assert report.by_category["phrase"] == (1, 2)
    keyword, ordinary, phrase = report.targets
    assert not keyword.passed  # the mislabeled ARRET
    assert ordinary.passed
    assert not phrase.passed
    text = format_report(report)
    assert "FAIL" in text
    assert "'ARRET': expected opt_in, got opt_out (stop, exact, fr)" in text


@pytest.mark.parametrize(
    "line",
    [b"{", b'{"text": "x"}', b'{"text": "x", "intent": "maybe", "language": "en", "category": "keyword"}',
     b'{"text": "x", "intent": "none", "language": "en", "category": "chat"}'],
)  # fmt: skip
def test_bad_corpus_lines_name_the_line(line: bytes) -> None:
    with pytest.raises(ConfigError, match=r"corpus:2: "):
        load_corpus([_line("STOP", "opt_out"), line])


def test_empty_lines_are_skipped() -> None:
    assert load_corpus([b"", _line("STOP", "opt_out"), b"  "]) == [
        Sample("STOP", Intent.OPT_OUT, "en", "keyword")
    ]


def test_cli_eval_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join([_line("STOP", "opt_out"), _line("hi", "none", category="ordinary")]))
    assert main(["classify", "--eval", str(good)]) == 0
    assert "PASS  recall on standard keywords" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_line("hello there", "opt_out"))
    assert main(["classify", "--eval", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["classify", "--eval", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


HOLDOUT = CORPUS.with_name("holdout.jsonl")


def test_the_held_out_corpus_does_not_regress() -> None:
    """tests/corpus/holdout.jsonl was written after the packs, by someone who never saw them, and
    the packs were not tuned on it (see tests/corpus/README.md). Its figures estimate how the rules
    generalise; the issue's targets are not expected to hold on it. These floors are the figures
    measured when it arrived, so a change that makes the rules generalise worse fails here."""
    samples = load_corpus(HOLDOUT.read_bytes().splitlines(), str(HOLDOUT))
    report = evaluate(samples, BASE)
    precision = [t.precision for i, t in report.by_intent.items() if i is not Intent.NONE]
    assert precision, format_report(report)
    assert all(p == 1.0 for p in precision), format_report(report)
    right, total = report.by_category["ordinary"]
    assert right == total, "a false positive on an ordinary reply"
    for category, floor in (("keyword", 1.0), ("surface", 0.95), ("leading", 0.95), ("phrase", 0.70)):
        right, total = report.by_category[category]
        assert right / total >= floor, (category, right, total)


FRESH = CORPUS.with_name("fresh.jsonl")


def test_the_fresh_held_out_set_keeps_issue_15_targets() -> None:
    """tests/corpus/fresh.jsonl (issue 15) was written by an author who never saw the packs; it was
    measured before any change (59.5% overall) and then tuned on, so these are floors: the issue's
    targets (>= 97% overall, at most one false positive on hard negatives, every group >= 90%)."""
    samples = load_corpus(FRESH.read_bytes().splitlines(), str(FRESH))
    assert len(samples) == 220
    report = evaluate(samples, BASE)
    assert report.passed, format_report(report)
    assert {t.name.split(" (")[0] for t in report.targets} >= {"overall", "group typo", "group hard_negative"}
