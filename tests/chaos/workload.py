"""The input of a chaos run: MOs with STOP/START of the same subscribers spread over partitions
and out of order in time, plus malformed records. Deterministic for a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

#: (partition, key, value) as produced; the key is None like most platforms' MOs.
Record = tuple[int, bytes | None, bytes | None]

_TEXTS = (
    ("see you tomorrow", 60),
    ("ok thanks", 10),
    ("STOP", 12),
    ("stop please", 3),
    ("UNSUBSCRIBE", 2),
    ("STOPALL", 1),
    ("START", 8),
    ("HELP", 2),
    ("Don't stop!", 2),
)

_BAD: tuple[bytes | None, ...] = (
    None,
    b"",
    b"not json",
    b"\xc3\x28",
    b"[1, 2]",
    b'{"text": "STOP"}',
    orjson.dumps({"message_id": "x", "channel": "sms", "from": "+1555\u00000001", "to": "1",
                  "account_id": "acme", "text": "STOP", "received_at": "2026-11-24T10:00:00Z"}),
    orjson.dumps({"message_id": "y", "channel": "sms", "from": "+15550000001", "to": "1",
                  "account_id": "acme", "text": "STOP", "received_at": "20261124T100000Z"}),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Workload:
    records: list[Record]
    bad: int


def make_workload(count: int, seed: int = 12, partitions: int = 4, bad: int = 52) -> Workload:
    """``count`` records of which ``bad`` are malformed; 400 subscribers on 3 senders, times spread
    over an hour so a subscriber's STOP and START arrive in any order on any partition."""
    rng = random.Random(seed)
    texts = [text for text, _ in _TEXTS]
    weights = [weight for _, weight in _TEXTS]
    bad_at = set(rng.sample(range(count), min(bad, count)))
    records: list[Record] = []
    for i in range(count):
        partition = rng.randrange(partitions)
        if i in bad_at:
            value = rng.choice(_BAD)
            # a tombstone needs a key (Kafka refuses a record with neither)
            records.append((partition, b"tombstone" if value is None else None, value))
            continue
        doc = {
            "message_id": f"chaos-{seed}-{i}",
            "channel": rng.choice(("sms", "sms", "whatsapp")),
            "from": f"+1555{rng.randrange(400):07d}",
            "to": rng.choice(("12345", "67890", "ACME")),
            "account_id": "acme",
            "text": rng.choices(texts, weights)[0],
            "received_at": f"2026-11-24T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{i:06d}Z",
        }
        records.append((partition, None, orjson.dumps(doc)))
    return Workload(records, len(bad_at))
