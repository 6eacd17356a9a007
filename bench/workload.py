"""A synthetic but realistic inbound-message (MO) stream for the classifier benchmark.

Why not a handful of fixed payloads: the classifier's cost depends on the data. Pure-ASCII text
skips the Unicode normalization, a keyword MO costs far more than chat (decision, change and
reply events, two extra produces), and a bad record builds a dead-letter event. So the mix
matters, and we make it look like real traffic:

* chat of varied length (2-160 characters, mostly short), in several languages and scripts,
  some with emoji, including near misses that must *not* match ("Don't stop!", "help me with
  my order");
* keyword MOs (``keyword_ratio``, default 3%) in the surface forms subscribers really send:
  "STOP", "stop.", " Stop!", "ＳＴＯＰ", "“stop”", "stop all", "UNSUBSCRIBE", "START", "HELP"...,
  with a brand or courtesy ("STOP ACME", "Stop please"), phrased ("stop texting me pls") and in
  other languages ("ARRET", "Baja");
* a sprinkle of bad records (``bad_ratio``, default 0.1%): invalid JSON, missing or mistyped
  fields, a JSON array, an empty value, a timestamp without an offset. The classifier must
  dead-letter every one of them.

Subscribers come from a pool of ~100k E.164 numbers with a skewed activity (a few chatty ones,
a long tail), sent to a few short codes and long numbers, across a few dozen accounts.

Every record is labelled with what the classifier should make of it, so the benchmark can check
the classifier's counts against the truth instead of only timing it. The stream is a pure
function of the seed: two runs with the same arguments produce the same bytes.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson


class Expect(StrEnum):
    """What the classifier should do with a record; the values are the worker's intent names."""

    NONE = "none"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    DEAD_LETTER = "dead_letter"


#: Keyword MOs as subscribers type them, with the intent the built-in rules give each.
#: Weighted towards STOP: it is by far the most common keyword on real traffic.
KEYWORDS: tuple[tuple[str, Expect, int], ...] = (
    ("STOP", Expect.OPT_OUT, 30),
    ("Stop", Expect.OPT_OUT, 12),
    ("stop", Expect.OPT_OUT, 12),
    ("stop.", Expect.OPT_OUT, 5),
    (" Stop!", Expect.OPT_OUT, 5),
    ("STOP!!!", Expect.OPT_OUT, 3),
    ("Stop 🛑", Expect.OPT_OUT, 2),
    ("stop\u200b", Expect.OPT_OUT, 1),
    ("ＳＴＯＰ", Expect.OPT_OUT, 1),
    ("“Stop”", Expect.OPT_OUT, 1),
    ("STOP\n", Expect.OPT_OUT, 1),
    ("stop all", Expect.OPT_OUT, 3),
    ("STOP ALL", Expect.OPT_OUT, 2),
    ("Stopall", Expect.OPT_OUT, 1),
    ("UNSUBSCRIBE", Expect.OPT_OUT, 4),
    ("unsubscribe", Expect.OPT_OUT, 2),
    ("Cancel", Expect.OPT_OUT, 3),
    ("END", Expect.OPT_OUT, 1),
    ("quit", Expect.OPT_OUT, 2),
    ("Opt out", Expect.OPT_OUT, 1),
    # keyword with a brand, number or courtesy, phrased requests, other languages (the language packs)
    ("STOP ACME", Expect.OPT_OUT, 2),
    ("Stop please", Expect.OPT_OUT, 2),
    ("stop texting me pls", Expect.OPT_OUT, 1),
    ("please stop sending these at night", Expect.OPT_OUT, 1),
    ("Please remove me from your list", Expect.OPT_OUT, 1),
    ("ARRET", Expect.OPT_OUT, 1),
    ("Baja", Expect.OPT_OUT, 1),
    ("START", Expect.OPT_IN, 8),
    ("Start.", Expect.OPT_IN, 2),
    ("start", Expect.OPT_IN, 2),
    ("UNSTOP", Expect.OPT_IN, 1),
    ("ｓｔａｒｔ", Expect.OPT_IN, 1),
    ("HELP", Expect.HELP, 8),
    ("help", Expect.HELP, 3),
    ("Help?", Expect.HELP, 3),
    ("INFO", Expect.HELP, 2),
)

#: Chat fragments by language, with each language's share of messages; a message is one or more
#: fragments of one language. About a quarter of messages end up non-ASCII (other scripts,
#: accents, emoji), and non-ASCII text takes the classifier's slower Unicode path.
_LANGUAGES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (78, (
        "ok", "Ok thanks", "yes", "Yes please", "no", "Y", "N", "thx", "k", "lol", "Sounds good",
        "What time does the store open tomorrow?", "Is my order shipped yet",
        "Can I change my appointment to Thursday at 3pm?", "Confirm", "Thanks!", "Who is this?",
        "I didn't order this", "Where is my package? It's been a week.", "Call me back please",
        "See you at 7", "Great, thanks for the reminder", "How much is the delivery fee",
        "My code didn't work", "Please resend the code", "Running 10 min late, sorry",
        "Can you send me the invoice again?", "Is there parking near the clinic?",
        "I'd like to reschedule", "Already paid yesterday", "Balance?", "What's my balance",
        "Hi", "Hello", "Good morning!", "thank you so much", "Perfect", "got it",
        # near misses: contain a keyword but are not one, so they must stay intent "none"
        "Don't stop!", "I want to cancel my order", "help me with my order", "can you help?",
        "start date is monday right?", "Stop by the front desk when you arrive?", "Need help",
        "when does the sale end?", "the end", "info about the sale?",
    )),
    (8, ("Sí, gracias", "¿A qué hora abren mañana?", "No puedo ir hoy", "Vale", "Llego tarde",
         "¿Cuánto cuesta el envío?", "ok gracias", "Buenos días")),
    (4, ("Obrigado!", "Pode confirmar o pedido?", "Tudo bem", "Chego às 10")),
    (2, ("Merci beaucoup", "Je serai en retard", "D'accord", "C'est combien ?")),
    (2, ("Danke, bis morgen", "Wann kommt das Paket?", "Alles klar", "Ja bitte")),
    (2, ("ありがとうございます", "明日は大丈夫です", "了解です", "谢谢", "好的，明天见", "감사합니다")),
    (2, ("شكرا جزيلا", "नमस्ते, धन्यवाद", "ठीक है", "Спасибо", "Хорошо, до встречи")),
    (2, ("Cảm ơn bạn", "Terima kasih", "Salamat po", "Asante sana")),
)  # fmt: skip
_LANGUAGE_CUM = tuple(itertools.accumulate(w for w, _ in _LANGUAGES))
_EMOJI: tuple[str, ...] = ("👍", "🙏", "😂", "❤️", "😊", "🎉", "👌", "😅", "🙂", "🔥", "😡", "✅")

_CHANNELS: tuple[str, ...] = ("sms", "whatsapp", "rcs")
_CHANNEL_WEIGHTS: tuple[int, ...] = (85, 10, 5)
_SENDERS: tuple[str, ...] = ("12345", "55555", "24273", "+14155550199", "+18885550123", "+12025550147")
_SENDER_WEIGHTS: tuple[int, ...] = (30, 20, 10, 20, 10, 10)


#: The accounts MOs come from unless told (``--accounts``): few, so the classifier's caches of
#: per-account pieces mostly hit; a platform's thousands make its keyword MOs dearer (the README's
#: sizing model says how much).
ACCOUNTS = 36


@dataclass(frozen=True, slots=True)
class Workload:
    """The knobs of the generated stream."""

    messages: int
    keyword_ratio: float = 0.03
    bad_ratio: float = 0.001
    subscribers: int = 100_000
    accounts: int = ACCOUNTS
    seed: int = 20261124
    keyword_shares: tuple[tuple[str, float], ...] | None = None
    """Per-intent shares of all records, e.g. ``(("opt_out", 0.09), ("opt_in", 0.01), ("help", 0.01))``
    for a campaign's replies; replaces ``keyword_ratio``. ``None`` keeps ``keyword_ratio`` split by
    the :data:`KEYWORDS` weights (and the same bytes as before shares existed)."""


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    value: bytes
    expect: Expect


def generate(workload: Workload) -> Iterator[Record]:
    """Yield ``workload.messages`` records, keyed by the subscriber address."""
    rng = random.Random(workload.seed)
    pool = workload.subscribers
    subscribers = [f"+1555{n:07d}" for n in rng.sample(range(10_000_000), pool)]
    accounts = [f"acct-{n:03d}" for n in range(1, workload.accounts + 1)]
    keyword_forms = [k for k, _, _ in KEYWORDS]
    keyword_expect = {k: e for k, e, _ in KEYWORDS}
    keyword_cum = list(itertools.accumulate(w for _, _, w in KEYWORDS))
    channel_cum = list(itertools.accumulate(_CHANNEL_WEIGHTS))
    sender_cum = list(itertools.accumulate(_SENDER_WEIGHTS))
    # Chat texts come from a pre-built pool: building each one is most of the generation time,
    # and the classifier caches nothing per text, so repeats cost it the same as fresh texts.
    chats = [_chat(rng) for _ in range(min(workload.messages, 50_000))]
    # received_at: one message every ~2 ms, ending about now; consecutive messages share the
    # formatted second, so cache it rather than calling strftime half a million times.
    step = 0.002
    clock = time.time() - workload.messages * step
    second_cache: tuple[int, str] = (-1, "")
    kw_cut = workload.keyword_ratio
    by_intent = _forms_by_intent(workload.keyword_shares) if workload.keyword_shares else None
    if by_intent is not None:
        kw_cut = by_intent[-1][0]
    bad_cut = kw_cut + workload.bad_ratio
    for i in range(workload.messages):
        # Skewed activity: squaring a uniform draw favours the low indices (the chatty few).
        address = subscribers[int(pool * rng.random() ** 2)]
        account_index = int(len(accounts) * rng.random() ** 3)
        account = accounts[account_index]
        instant = clock + i * step
        second = int(instant)
        if second != second_cache[0]:
            second_cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        received_at = f"{second_cache[1]}.{int((instant - second) * 1000):03d}Z"
        doc: dict[str, Any] = {
            "message_id": f"SM{rng.getrandbits(128):032x}",
            "channel": rng.choices(_CHANNELS, cum_weights=channel_cum)[0],
            "from": address,
            "to": rng.choices(_SENDERS, cum_weights=sender_cum)[0],
            "account_id": account,
        }
        if account_index % 3 == 0:  # a third of the accounts use subaccounts
            doc["subaccount_id"] = f"{account}-sub-{rng.randrange(4)}"
        elif account_index % 3 == 1 and rng.random() < 0.5:
            doc["subaccount_id"] = None
        roll = rng.random()
        if roll < kw_cut:
            if by_intent is None:
                text = rng.choices(keyword_forms, cum_weights=keyword_cum)[0]
            else:  # the roll picks the intent, then the intent's forms keep their relative weights
                _, forms, cum = next(entry for entry in by_intent if roll < entry[0])
                text = rng.choices(forms, cum_weights=cum)[0]
            expect = keyword_expect[text]
        else:
            text = rng.choice(chats)
            expect = Expect.NONE
        doc["text"] = text
        doc["received_at"] = received_at
        key = address.encode()
        if kw_cut <= roll < bad_cut:
            yield Record(key, _spoil(rng, doc), Expect.DEAD_LETTER)
        else:
            yield Record(key, orjson.dumps(doc), expect)


def _forms_by_intent(
    shares: tuple[tuple[str, float], ...],
) -> list[tuple[float, list[str], list[int]]]:
    """``(cumulative share, forms, cumulative weights)`` per intent, in the order given."""
    table = []
    cut = 0.0
    for intent, share in shares:
        forms = [(k, w) for k, e, w in KEYWORDS if e.value == intent]
        if not forms:
            raise ValueError(f"no keyword forms for intent {intent!r}")
        cut += share
        table.append((cut, [k for k, _ in forms], list(itertools.accumulate(w for _, w in forms))))
    return table


def _chat(rng: random.Random) -> str:
    """A chat message of 2-160 characters: mostly short, some medium, a few long."""
    shape = rng.random()
    if shape < 0.6:
        target = rng.randint(2, 30)
    elif shape < 0.9:
        target = rng.randint(30, 90)
    else:
        target = rng.randint(90, 160)
    phrases = rng.choices(_LANGUAGES, cum_weights=_LANGUAGE_CUM)[0][1]
    parts = [rng.choice(phrases)]
    length = len(parts[0])
    while length < target:
        phrase = rng.choice(phrases)
        parts.append(phrase)
        length += len(phrase) + 1
    if rng.random() < 0.12:
        parts.append(rng.choice(_EMOJI) * rng.randint(1, 3))
    text = " ".join(parts)
    return text[:160] if len(text) > 160 else text


def _spoil(rng: random.Random, doc: dict[str, Any]) -> bytes:
    """A record the classifier must dead-letter, of one of the kinds platforms really send."""
    kind = rng.randrange(7)
    if kind == 0:  # truncated in transit
        raw = orjson.dumps(doc)
        return raw[: len(raw) // 2]
    if kind == 1:  # an upstream bug drops a field
        del doc[rng.choice(("text", "from", "account_id", "received_at"))]
    elif kind == 2:  # a number where a string belongs
        doc["account_id"] = rng.randrange(1000)
    elif kind == 3:  # a local time without an offset
        doc["received_at"] = doc["received_at"].removesuffix("Z")
    elif kind == 4:  # batched by mistake
        return orjson.dumps([doc])
    elif kind == 5:  # a tombstone-like empty value
        return b""
    else:  # null where a string is required
        doc["to"] = None
    return orjson.dumps(doc)
