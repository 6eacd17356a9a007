"""worker.classify.normalize: folding a message to its keyword-matching key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.classify.normalize import normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "stop"),
        ("Stop.", "stop"),
        (" STOP!! 😡", "stop"),
        ("“stop”", "stop"),
        ("'stop'", "stop"),
        ("«Stop»", "stop"),
        ("ＳＴＯＰ", "stop"),
        ("ＳＴＯＰ！", "stop"),
        ("🛑 stop 🛑", "stop"),
        ("✋🏽STOP✋🏽", "stop"),
        ("S\u200bT\u200dOP", "stop"),
        ("\ufeffstop\ufe0f", "stop"),
        ("st\u00adop", "stop"),
        ("  opt \t\n  OUT  ", "opt out"),
        ("ＯＰＴ\u3000ＯＵＴ", "opt out"),
        ("opt\u00a0out", "opt out"),
        ("_stop_", "stop"),
        ("¡Alto!", "alto"),
        ("Straße", "strasse"),
        ("ΣΤΑΜΑΤΑ", "σταματα"),
        ("Arrêt", "arrêt"),
        ("Don't stop!", "don't stop"),
        ("stop-it", "stop-it"),
        ("e-mail me", "e-mail me"),
        ("42", "42"),
        ("", ""),
        ("   ", ""),
        ("!!!", ""),
        ("😡😡", ""),
        ("\u200b", ""),
    ],
)
def test_examples(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_inner_punctuation_is_kept_so_sentences_stay_sentences() -> None:
    assert normalize("Don't stop!") != normalize("stop")
    assert normalize("please stop by later") == "please stop by later"


# Non-ASCII characters chosen to exercise every step (full-width forms, quotes, emoji, exotic
# spaces, invisibles, case-folding that changes length) but no combining marks: see the explicit
# test below for why those are left out of the general property.
_UNICODE_SAMPLES = (
    "ＳＴＯＰａｂｃ１２！？　"
    "“”‘’«»„¡¿…—–"
    "😡🛑✋🏽👍❤"
    "\u00a0\u2003\u3000\u2028\u0085"
    "\u200b\u200d\ufe0f\ufeff\u00ad"
    "éÉñÑüÜçÇßẞΣσςİ"
    "ﬁ①²"
)
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E), st.sampled_from(_UNICODE_SAMPLES)
    ),
    max_size=40,
)


@given(_TEXT)
def test_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(_TEXT)
def test_output_shape(text: str) -> None:
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    assert all(not c.isspace() or c == " " for c in out)
    if out:
        assert out[0].isalnum()
        assert out[-1].isalnum()


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_ascii_fast_path_agrees_with_unicode_path(text: str) -> None:
    # A zero-width space forces the Unicode path and is then removed: same key either way.
    assert normalize(text + "\u200b") == normalize(text)
    assert normalize("\u200b" + text) == normalize(text)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20))
def test_case_and_width_do_not_matter(word: str) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in word)
    assert normalize(word.upper()) == normalize(word.lower()) == normalize(full_width) == word.lower()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "xe\u200b\u0301y",
            id="invisible-between-base-and-combining-mark",
        ),
        pytest.param(
            "a\u00df\u0301b",
            id="casefold-output-not-nfkc",
        ),
    ],
)
def test_idempotent_with_combining_marks(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
