"""worker/classify/_fold.c: the classifier's key, words and gate hint for printable ASCII text, in
C, must be exactly what the Python reference gives (normalize, then tokens, then a set lookup)."""

from __future__ import annotations

import shutil
import string
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.classify import normalize as module
from worker.classify.decide import Doubt, classify
from worker.classify.normalize import BITMAP_BYTES, fold, normalize, probes, tokens, word_bits, word_probes
from worker.classify.rules import default_rulebook

RULES = default_rulebook().base
PRINTABLE_ASCII = st.text(alphabet=st.sampled_from([chr(c) for c in range(0x20, 0x7F)]), max_size=80)
#: Printable ASCII weighted towards what changes the result: spaces, punctuation, capitals.
EDGY = st.text(alphabet=st.sampled_from(list(" .,!?'-_@#  aZsStTOoPp09\"()")), max_size=40)
#: Chat made of gate words (phrase triggers, opt-out keywords) and other words.
GATE_WORDS = sorted(word.decode() for word in RULES.gate if word.isascii())
WORDY = st.lists(
    st.one_of(st.sampled_from(GATE_WORDS), st.sampled_from(["ok", "the", "sale", "Thanks", "7", "!", ","])),
    max_size=12,
).map(" ".join)
COMPILED = pytest.mark.skipif(not module.COMPILED, reason="the C extension is not built")


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    """The install builds it when it can: with a C compiler here, the fast path must be in use."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the Python path is in use, as designed")
    assert module.COMPILED, "worker/classify/_fold.c was not built: reinstall (pip install -e .)"


@COMPILED
@settings(max_examples=3000)
@given(st.one_of(PRINTABLE_ASCII, EDGY, WORDY))
@example("")
@example("   ")
@example("?!")
@example("STOP")
@example("  Stop,  please!!  ")
@example("s.t.o.p")
@example("when does the sale end?")
@example("x" * 600)  # longer than the C function's stack buffer
@example(("Stop by  the desk, " * 40).strip())
def test_fold_is_normalize_then_tokens_then_the_gate(text: str) -> None:
    key = normalize(text)
    words = tokens(key)
    folded = fold(text, RULES.gate_bits)
    assert folded is not None
    assert folded[:2] == (key, words)
    if not RULES.gate.isdisjoint(words):
        assert folded[2], "a message with a gate word must never skip the gate"


@COMPILED
@given(st.text(max_size=30).filter(lambda text: not (text.isascii() and text.isprintable())))
@example("stop\n")
@example("stop\t")
@example("arrêt")
@example("ＳＴＯＰ")
@example("stop 😡")
def test_any_other_text_is_left_to_python(text: str) -> None:
    assert fold(text, RULES.gate_bits) is None


@COMPILED
def test_the_bitmap_turns_away_words_not_in_it() -> None:
    bits = word_bits([b"stop", b"end"])
    assert fold("Stop by later", bits) == ("stop by later", [b"stop", b"by", b"later"], True)
    assert fold("see you at the sale", bits) == (
        "see you at the sale",
        [b"see", b"you", b"at", b"the", b"sale"],
        False,
    )
    assert fold("see you at the sale", b"\xff" * BITMAP_BYTES) is not None
    assert fold("hello", b"\xff" * BITMAP_BYTES) == ("hello", [b"hello"], True)


def test_the_bitmap_has_both_bits_of_each_word() -> None:
    bits = word_bits(RULES.gate)
    for word in RULES.gate:
        for h in word_probes(word):
            assert bits[h >> 3] >> (h & 7) & 1
    assert len(bits) == BITMAP_BYTES
    empty = 2166136261  # FNV-1a of no bytes
    assert word_probes(b"") == ((empty ^ (empty >> 16)) & 0xFFFF, (empty * 2654435769 % 2**32) >> 16)


@given(st.integers(0, 2**32 - 1), st.sampled_from([16, 20]))
def test_both_probes_are_bits_of_the_bitmap(h: int, width: int) -> None:
    assert all(0 <= bit < 2**width for bit in probes(h, width))


@COMPILED
def test_a_word_needs_both_of_its_bits() -> None:
    """A bitmap with only one of a word's bits set turns the word away: the C side tests both."""
    first, second = word_probes(b"stop")
    for kept in (first, second):
        if first == second:
            break
        bits = bytearray(BITMAP_BYTES)
        bits[kept >> 3] |= 1 << (kept & 7)
        assert fold("stop", bytes(bits)) == ("stop", [b"stop"], False)
    assert fold("stop", word_bits([b"stop"])) == ("stop", [b"stop"], True)


def test_most_chat_words_are_not_in_the_default_bitmap() -> None:
    """A bitmap with most bits set would skip nothing: the default rules' gate leaves most clear."""
    ones = sum(bin(byte).count("1") for byte in RULES.gate_bits)
    assert ones <= 2 * len(RULES.gate)
    assert ones < BITMAP_BYTES * 8 // 50


@COMPILED
@pytest.mark.parametrize(
    "bad",
    [("STOP",), ("STOP", b"short"), (b"STOP", bytes(BITMAP_BYTES)), ("STOP", bytearray(BITMAP_BYTES))],
)
def test_fold_refuses_wrong_arguments(bad: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        fold(*bad)  # type: ignore[arg-type]


def test_the_fallback_leaves_every_text_to_python() -> None:
    assert module._no_fold("STOP", RULES.gate_bits) is None


def test_every_ascii_edge_character_is_punctuation_or_whitespace() -> None:
    """The C code strips what is not a letter or a digit; normalize strips string.whitespace and
    string.punctuation: for printable ASCII, the same characters."""
    printable = {chr(c) for c in range(0x20, 0x7F)}
    assert {c for c in printable if not c.isalnum()} == set(string.punctuation + " ")


@COMPILED
@settings(max_examples=1500)
@given(st.one_of(WORDY, EDGY, st.text(max_size=40)))
@example("Stop, who gave you my number")
@example("when does the sale end?")
@example("please just stop, I'm begging you")
def test_classify_is_the_same_without_the_extension(text: str) -> None:
    """The install without a C compiler classifies every message as the compiled one does."""
    decide: Any = sys.modules["worker.classify.decide"]  # the package re-exports a decide() function
    compiled_doubts: list[Doubt] = []
    python_doubts: list[Doubt] = []
    compiled = classify(text, RULES, compiled_doubts)
    saved = decide.fold
    decide.fold = module._no_fold
    try:
        python = classify(text, RULES, python_doubts)
    finally:
        decide.fold = saved
    assert compiled == python
    assert compiled_doubts == python_doubts
