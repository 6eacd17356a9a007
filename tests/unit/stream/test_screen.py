"""worker/stream/_screen.c, the batch step's chat screen: it may pass over a record only when the
full path (decode, then classify) would find it valid chat with no doubt, and the documents it
hands on must be what decode() gives. Then classify_records must not change with it."""

from __future__ import annotations

import array
import shutil
import string
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.workload import Workload, generate
from tests.unit.factories import FakeRecord, inbound_doc, where
from worker.classify.decide import Doubt, classify
from worker.classify.normalize import normalize
from worker.classify.rules import BUILTIN_LAYER, Layer, Rule, RuleBook, compile_layers, default_rulebook
from worker.classify.screen import FOLD_ALNUM, FOLD_LIMIT, fold_table
from worker.errors import InputError
from worker.events.inbound import canonical_instant, decode
from worker.model import Intent
from worker.stream import batch, screen
from worker.stream.batch import BatchOutput, classify_records

BOOK = default_rulebook()
RULES = BOOK.base
CORPUS = Path(__file__).parents[2] / "corpus"
CORPUS_TEXTS = sorted(
    {
        orjson.loads(line)["text"]
        for name in ("labeled.jsonl", "holdout.jsonl", "fresh.jsonl")
        for line in (CORPUS / name).read_bytes().splitlines()
        if line.strip()
    }
)
COMPILED = pytest.mark.skipif(not screen.COMPILED, reason="the C extension is not built")


def _words(words: frozenset[bytes]) -> list[str]:
    return sorted(w.decode() for w in words if w.isascii())


#: Texts made of the words every step of classify() looks for, and of plain chat words.
RULE_WORDS = sorted(
    {*_words(RULES.gate), *_words(RULES.openers), *_words(RULES.prefixes), *_words(RULES.courtesy)}
    | {k for k in RULES.table if k.isascii()}
)
WORDY = st.lists(
    st.one_of(
        st.sampled_from(RULE_WORDS), st.sampled_from(["ok", "the", "sale", "Thanks", "7", "!", "?", ","])
    ),
    max_size=10,
).map(" ".join)
#: Sentences of those words as people write them: cased any way, set apart by punctuation or not,
#: with the objects of a command ("stop it") and chat around: each of the screen's looks at a
#: command, a leading keyword or a short message meets both of its answers.
CASED = st.sampled_from([*RULE_WORDS, "it", "that", "this", "sale", "the", "my", "order", "7", "a"]).flatmap(
    lambda w: st.sampled_from([w, w.title(), w.upper()])
)
SENTENCES = st.lists(
    st.tuples(CASED, st.sampled_from([" ", " ", " ", ", ", ". ", "! ", ": ", "; ", " , ", " - ", "? "])),
    min_size=1,
    max_size=12,
).map(lambda pairs: "".join(w + sep for w, sep in pairs).rstrip())
PRINTABLE = st.text(alphabet=st.sampled_from([chr(c) for c in range(0x20, 0x7F)]), max_size=60)
EDGY = st.text(alphabet=st.sampled_from(list(" .,!?'-_@#\n\taZsStTOoPp09\"()ÉＳ😡")), max_size=30)
TEXTS = st.one_of(WORDY, SENTENCES, PRINTABLE, EDGY, st.sampled_from(CORPUS_TEXTS), st.text(max_size=40))


def _record(value: bytes | None) -> FakeRecord:
    return FakeRecord("mo.inbound", 0, 7, 1764000000000, b"k", value)


def _verdict(value: bytes | None, book: RuleBook = BOOK) -> tuple[str, Any]:
    """("chat", None), ("valid", doc) or ("full", None): what the screen made of one record."""
    result = screen.screen_records([_record(value)], book)
    assert result is not None
    loud, docs, last_chat = result
    if not loud:
        assert last_chat == 0
        return "chat", None
    assert (loud, last_chat) == ([0], -1)
    return ("full", None) if docs[0] is None else ("valid", docs[0])


def _check(value: bytes | None, book: RuleBook = BOOK) -> str:
    """The screen's verdict on ``value``, after checking it against the full path."""
    verdict, doc = _verdict(value, book)
    if verdict == "full":
        return verdict
    full, instant = decode(value)  # passed over or handed on: decode must accept it
    if verdict == "valid":
        assert doc == full
        assert canonical_instant(doc["received_at"], None) == canonical_instant(doc["received_at"], instant)
        return verdict
    assert "intent" not in full
    rules = book.resolve(full["account_id"], full.get("subaccount_id"), full["to"])
    doubts: list[Doubt] = []
    assert classify(full["text"], rules, doubts) is None, full["text"]
    assert doubts == [], full["text"]
    return verdict


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: every record takes the full path, as designed")
    assert screen.COMPILED, "worker/stream/_screen.c was not built: reinstall (pip install -e .)"


@COMPILED
@settings(max_examples=3000, deadline=None)
@given(TEXTS)
@example("")
@example("STOP")
@example("stop")
@example("S T O P")
@example("stpo")
@example("please stop")
@example("See you at 7")
@example("Yes please")
@example("Stop by later?")
@example("x" * 600)
@example("Stop by the front desk")
@example("stop it")
@example("stop, who gave you my number")
@example("when does the sale end")
@example("ok, when does the sale END")
@example("thanks. stop")
@example("please just stop")
@example("thank you so much")
@example("S top")
@example("sotp thanks")
def test_a_text_passed_over_is_chat_for_classify(text: str) -> None:
    _check(orjson.dumps(inbound_doc(text)))


@COMPILED
def test_no_corpus_message_the_rules_act_on_is_passed_over() -> None:
    verdicts = {text: _check(orjson.dumps(inbound_doc(text))) for text in CORPUS_TEXTS}
    assert "chat" in verdicts.values(), "the screen passed over nothing: it saves nothing"
    assert "valid" in verdicts.values()


@COMPILED
def test_common_chat_is_passed_over_and_keywords_are_not() -> None:
    assert _check(orjson.dumps(inbound_doc("Running 10 min late, sorry"))) == "chat"
    assert _check(orjson.dumps(inbound_doc("Sounds good"))) == "chat"
    for text in ("STOP", "stop", "Stop!", "unsubscribe", "START", "HELP", "S T O P", "stpo"):
        assert _check(orjson.dumps(inbound_doc(text))) == "valid", text
    assert _check(orjson.dumps(inbound_doc("ＳＴＯＰ"))) == "valid"  # not ASCII: classify decides


@COMPILED
def test_chat_that_holds_a_word_of_the_rules_is_passed_over() -> None:
    """The screen reads each step's own conditions, not just its words: a command in a sentence, a
    courtesy word before chat, a short message whose first word is no mangled keyword."""
    chat = [
        "when does the sale end?",
        "the end",
        "Stop by the front desk when you arrive?",
        "I want to cancel my order",
        "Don't stop!",
        "thank you so much",
        "Please resend the code",
        "Call me back please",
        "See you at 7",
    ]
    for text in chat:
        assert _check(orjson.dumps(inbound_doc(text))) == "chat", text
    loud = [
        "stop it?",  # an object (a question: no leading look)
        "stop, who gave you my number",  # punctuation after the command
        "who gave you my number. stop",  # ... or before it
        "who is this? ok. thanks stop",  # a courtesy word before it
        "please stop, who is this?",  # courtesy words, then the command
        "when does the sale END",  # capitals: a complaint, or a doubt for review
        "please stop",  # a leading keyword after courtesy words
        "S top",  # a split keyword
        "sotp thanks",  # a mangled one before courtesy words
        "sotp 2",  # ... or a number
    ]
    for text in loud:
        assert _check(orjson.dumps(inbound_doc(text))) == "valid", text


#: Field values that decode() takes or refuses, for every field.
IDENTIFIERS = st.one_of(
    st.sampled_from(["acme", "+15550000001", "12345", "sms", "m-1", "", " ", "a\x00b", "é", "x" * 300, "ok"]),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.text(max_size=8),
)
DIGITS = st.integers(0, 9999).map(lambda n: f"{n:04d}")
TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")
STAMPS = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, s, frac, t, z: f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{frac}{z}",
        st.sampled_from(["2026", "2024", "2023", "1900", "2000", "0000", "0001", "9999"]) | DIGITS,
        st.sampled_from(["01", "02", "12", "13", "00"]) | TWO,
        st.sampled_from(["28", "29", "30", "31", "00", "32"]) | TWO,
        st.sampled_from(["00", "23", "24"]) | TWO,
        st.sampled_from(["00", "59", "60"]),
        st.sampled_from(["00", "59", "60"]),
        st.sampled_from(["", ".", ".1", ".123", ".123456", ".1234567", ".12a"]),
        st.sampled_from(["T", "t", " "]),
        st.sampled_from(["Z", "z", "+01:00", ""]),
    ),
    st.text(alphabet=string.digits + "-T:.Z", max_size=27),
)


@COMPILED
@settings(max_examples=3000, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "message_id": IDENTIFIERS,
            "channel": IDENTIFIERS,
            "from": IDENTIFIERS,
            "to": IDENTIFIERS,
            "account_id": IDENTIFIERS,
            "subaccount_id": IDENTIFIERS,
            "text": st.one_of(TEXTS, st.integers(0, 9), st.none()),
            "received_at": st.one_of(STAMPS, st.integers(0, 9)),
            "intent": st.sampled_from(["opt_out", "nope"]),
            "category": st.sampled_from(["all", "marketing"]),
        },
    )
)
def test_a_document_passed_over_or_handed_on_is_one_decode_accepts(fields: dict[str, Any]) -> None:
    base = {k: v for k, v in inbound_doc("hello there").items() if k not in fields or fields[k] is not None}
    _check(orjson.dumps(base | fields))


@COMPILED
@settings(max_examples=2000, deadline=None)
@given(STAMPS)
@example("2026-11-24T10:00:00Z")
@example("2026-11-24T10:00:00.123456Z")
@example("2024-02-29T10:00:00Z")  # leap years: every fourth, not every hundredth, every 400th
@example("2023-02-29T10:00:00Z")
@example("1900-02-29T10:00:00Z")
@example("2000-02-29T10:00:00Z")
@example("0000-01-01T00:00:00Z")  # no year 0
@example("0001-01-01T00:00:00Z")  # the edge years take decode()'s range check
@example("9999-12-31T23:59:59Z")
@example("2026-04-31T10:00:00Z")
@example("2026-11-24T24:00:00Z")
@example("2026-11-24T10:00:60Z")
@example("2026-11-24T10:00:00.Z")
@example("2026-11-24T10:00:00.1234567Z")
def test_a_timestamp_is_passed_only_when_decode_takes_it(stamp: str) -> None:
    _check(orjson.dumps(inbound_doc("Sounds good", received_at=stamp)))
    _check(orjson.dumps(inbound_doc("STOP", received_at=stamp)))


@COMPILED
@pytest.mark.parametrize(
    "value",
    [None, b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", orjson.dumps(inbound_doc("x" * 70000))],
)
def test_bad_records_take_the_full_path(value: bytes | None) -> None:
    assert _verdict(value)[0] == "full"
    with pytest.raises(InputError):
        decode(value)


@COMPILED
def test_an_account_with_rules_of_its_own_is_never_passed_over() -> None:
    override = Layer(True, (Rule("hush", Intent.OPT_OUT, ("HUSH",)),), MappingProxyType({}))
    book = RuleBook(compile_layers([BUILTIN_LAYER]), (BUILTIN_LAYER,), accounts={"acme": override})
    assert _check(orjson.dumps(inbound_doc("hush", account="other")), book) == "chat"
    assert _check(orjson.dumps(inbound_doc("hush", account="acme")), book) == "valid"


def _outputs(records: list[FakeRecord], book: RuleBook) -> tuple[Any, ...]:
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="9.9.9")
    for start in range(0, len(records), 500):
        classify_records(where(records), records[start : start + 500], book, out)
    return (
        out.changes,
        out.replies,
        out.dead_letters,
        out.reviews,
        out.intents,
        out.dead_by_code,
        out.newest_received,
        out.uncanonical,
        out.consumed,
    )


@COMPILED
def test_the_batch_step_gives_the_same_output_with_and_without_the_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the benchmark's campaign workload: chat, keywords, bad records, non-ASCII text."""
    generated = generate(Workload(messages=6000, keyword_ratio=0.11, bad_ratio=0.01, seed=11))
    records = [FakeRecord("mo.inbound", 0, i, 0, r.key, r.value) for i, r in enumerate(generated)]
    screened = _outputs(records, BOOK)
    monkeypatch.setattr(batch, "screen_records", lambda records, rulebook: None)
    assert screened == _outputs(records, BOOK)
    changes, dead_letters, intents = screened[0], screened[2], screened[4]
    assert changes
    assert dead_letters
    assert intents[Intent.NONE] > 0


# -- the common form, read on the bytes ---------------------------------------------------------

SPACE = st.text(alphabet=" \t\n\r", max_size=2)
#: Values the dict path sees as other JSON: each sends the record off the byte-level reading.
OTHER_VALUES = st.sampled_from([b"1", b"-0.5", b"true", b"false", b"[]", b'{"a":1}', b'["x"]'])


def _json_string(value: str, draw: st.DrawFn) -> bytes:
    """``value`` as a JSON string, with some of its characters escaped (as a producer may write
    them: ``\\u0041``, ``\\/``), which orjson reads back as the same string."""
    out = bytearray(b'"')
    for char in value:
        if char in '"\\' or ord(char) < 0x20:
            out += orjson.dumps(char)[1:-1]
        elif char.isascii() and draw(st.integers(0, 20)) == 0:
            out += b"\\/" if char == "/" else f"\\u{ord(char):04x}".encode()
        else:
            out += char.encode()
    return bytes(out + b'"')


@st.composite
def written(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    """``doc`` written as a producer might: spaces between tokens, keys in any order, escapes,
    extra keys of any JSON type, a field written twice (orjson keeps the last)."""
    members: list[bytes] = []
    for name, value in draw(st.permutations(list(doc.items()))):
        if draw(st.integers(0, 15)) == 0:  # an earlier value of the same field, overwritten
            members.append(_json_string(name, draw) + b":" + _json_string("earlier", draw))
        rendered = orjson.dumps(value) if not isinstance(value, str) else _json_string(value, draw)
        members.append(
            _json_string(name, draw) + draw(SPACE).encode() + b":" + draw(SPACE).encode() + rendered
        )
    if draw(st.booleans()):
        extra = draw(st.one_of(OTHER_VALUES, st.just(b"null"), st.just(b'"x"')))
        members.insert(draw(st.integers(0, len(members))), b'"extra"' + b":" + extra)
    joined = b",".join(m + draw(SPACE).encode() for m in members)
    return draw(SPACE).encode() + b"{" + draw(SPACE).encode() + joined + b"}" + draw(SPACE).encode()


@COMPILED
@settings(max_examples=3000, deadline=None)
@given(st.data(), st.one_of(TEXTS, st.sampled_from(["Sounds good", "See you at 7", "STOP", "hello"])))
def test_a_document_read_on_its_bytes_is_judged_as_its_parsed_form(data: st.DataObject, text: str) -> None:
    """However a document is written, the screen's verdict is the one it gives the same document
    as orjson writes it (and both agree with decode and classify)."""
    doc: dict[str, Any] = inbound_doc(text)
    if data.draw(st.booleans()):
        doc["subaccount_id"] = data.draw(st.sampled_from(["s1", "", None]))
    raw = data.draw(written(doc))
    assert orjson.loads(raw) == doc | ({"extra": orjson.loads(raw)["extra"]} if b'"extra"' in raw else {})
    assert _check(raw) == _check(orjson.dumps(orjson.loads(raw)))


@COMPILED
@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":"b",}',  # a trailing comma: not JSON
        b"{}",
        b'{"text":"hi"} x',
        b'{"text":"hi"',
        b'{"text" "hi"}',
        b'{"text":nul}',
        b'{"text":"hi","text":"STOP"}',
    ],
)
def test_broken_or_odd_documents_are_not_passed_over(raw: bytes) -> None:
    assert _verdict(raw)[0] != "chat"


#: Byte sequences that are not UTF-8 (Unicode's table 3-7), each next to one that is.
NOT_UTF8 = [
    b"\xc3\x28",  # a lead byte without its continuation
    b"\x80",  # a continuation alone
    b"\xc0\xaf",  # an overlong "/"
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # overlong, three bytes
    b"\xf0\x82\x82\xac",  # overlong, four bytes
    b"\xed\xa0\x80",  # a surrogate
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"\xe2\x82",  # cut short
]
UTF8 = [
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xed\x9f\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xee\x80\x80",
]


@COMPILED
@pytest.mark.parametrize("bad", NOT_UTF8)
def test_a_text_that_is_not_utf8_takes_the_full_path(bad: bytes) -> None:
    """Chat beyond ASCII is read on its bytes too, so the screen must refuse every byte sequence
    orjson refuses: decode() words the dead letter."""
    for around in (b"Buenos d%sas", b"%s", b"ok %s thanks"):
        raw = orjson.dumps(inbound_doc("@@")).replace(b"@@", around.replace(b"%s", bad))
        with pytest.raises(InputError):
            decode(raw)
        assert _verdict(raw)[0] == "full", raw


@COMPILED
@pytest.mark.parametrize("good", UTF8)
def test_chat_beyond_ascii_is_read_on_its_bytes(good: bytes) -> None:
    raw = orjson.dumps(inbound_doc("@@")).replace(b"@@", b"Buenos d" + good + b"as")
    decode(raw)  # valid
    assert _check(raw) in ("chat", "valid")
    assert _check(orjson.dumps(inbound_doc("Buenos días"))) == "chat"
    assert _check(orjson.dumps(inbound_doc("спасибо, до встречи"))) == "chat"


@COMPILED
def test_a_field_written_twice_is_judged_by_its_last_value() -> None:
    doc = orjson.dumps(inbound_doc("Sounds good"))
    assert _check(doc) == "chat"
    twice = doc.replace(b'"text":"Sounds good"', b'"text":"Sounds good","text":"STOP"')
    assert _check(twice) == "valid"
    assert _verdict(twice)[1]["text"] == "STOP"


# -- texts beyond ASCII: the fold table --------------------------------------------------------

FOLDS = array.array("I")
FOLDS.frombytes(fold_table())
#: Characters the table folds, from every block that has some (a few per block).
FOLDABLE = sorted(
    {chr(c) for c in range(0x80, FOLD_LIMIT, 37) if FOLDS[c]} | set("éÉñÑçÇüÜíÍСсПпΣσς가😂👍🙏¿¡«»")
)
#: Characters it refuses: those normalize() rewrites, removes or composes with a neighbour.
UNFOLDABLE = [*"ßİ，ＳＴＯＰﾟ\u0301\u0308\u11a8\u1161\ufe0f\u200b\u00a0\u2019\u3000\u2028ǅﬁ²", chr(0x2F800)]
NON_ASCII_KEYS = sorted({k for k in RULES.table if not k.isascii()})
UNICODE_TEXTS = st.lists(
    st.one_of(
        st.sampled_from(FOLDABLE),
        st.sampled_from(UNFOLDABLE),
        st.sampled_from(NON_ASCII_KEYS).flatmap(lambda k: st.sampled_from([k, k.upper(), k.title()])),
        st.sampled_from(RULE_WORDS),
        st.sampled_from([" ", "  ", "?", "!", ".", ",", "-", "'", "ok", "Gracias", "спасибо", "7"]),
    ),
    max_size=12,
).map("".join)


def _fold_reference(text: str) -> str | None:
    """What _screen.c makes of a text beyond ASCII, in Python: None when a character is not
    folded alone, else the key (characters folded one by one, trimmed to letters and digits at both
    ends, runs of spaces collapsed)."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            if not char.isprintable():
                return None
            out.append(char.lower())
        elif code >= FOLD_LIMIT or not FOLDS[code]:
            return None
        else:
            out.append(chr(FOLDS[code] & ~FOLD_ALNUM))
    key = "".join(out)
    alnum = [i for i, char in enumerate(key) if char.isalnum()]
    key = key[alnum[0] : alnum[-1] + 1] if alnum else ""
    while "  " in key:
        key = key.replace("  ", " ")
    return key


@settings(max_examples=3000, deadline=None)
@given(UNICODE_TEXTS)
@example("Cảm ơn bạn")
@example("¿Cuánto cuesta el envío? 🙏🙏🙏")
@example("СТОП")
@example("e\u0301")
@example("\u1100\u1161")
def test_a_foldable_text_folds_to_its_normalized_key(text: str) -> None:
    """The table's promise: a text of foldable characters is already NFKC, and case folding maps
    each character alone; so normalize() is the per-character fold, trimmed and collapsed."""
    key = _fold_reference(text)
    if key is not None:
        assert key == normalize(text), text


@COMPILED
@settings(max_examples=4000, deadline=None)
@given(UNICODE_TEXTS)
@example("Cảm ơn bạn Salamat po")
@example("¿Cuánto cuesta el envío? 🙏🙏🙏")
@example("Спасибо")
@example("СТОП")
@example("arrêt")
@example("ARRÊT")
@example("Arrêt s'il vous plaît")
@example("감사합니다")
@example("👍👍")
def test_a_text_beyond_ascii_passed_over_is_chat_for_classify(text: str) -> None:
    _check(orjson.dumps(inbound_doc(text)))


@COMPILED
def test_common_chat_beyond_ascii_is_passed_over_and_keywords_are_not() -> None:
    for text in (
        "Buenos días",
        "Cảm ơn bạn",
        "Спасибо, до встречи",
        "감사합니다",
        "Nos vemos mañana 🙏",
        "👍👍",
    ):
        assert _check(orjson.dumps(inbound_doc(text))) == "chat", text
    for text in NON_ASCII_KEYS:
        for form in (text, text.upper(), f"{text.upper()}!", f"«{text}»"):
            assert _check(orjson.dumps(inbound_doc(form))) == "valid", form
    assert _check(orjson.dumps(inbound_doc("Straße"))) == "valid"  # ß folds to "ss": classify folds it
