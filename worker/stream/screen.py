"""The batch step's chat screen: which records of a partition's batch need Python at all.

Most inbound records are chat, and for them the full path (decode and validate, then classify)
only finds that there is nothing to do. ``worker/stream/_screen.c`` finds the same for the common
shape of chat in one C pass over the batch (orjson's parse, a few type and range checks, the
classifier's fold and five bitmap tests: :mod:`worker.classify.screen`). It returns the other
records, each with its parsed document when that is valid in the common shape (Python then only
classifies its text), and :func:`worker.stream.batch.classify_records` decides them as before. It
can only err towards the full path, never past a record the full path would act on
(``tests/unit/stream/test_screen.py``).

Measured in process on the benchmark's workloads (``bench.workload``, 100,000 records, batches of
5,000; the best of five runs): the batch step went from 6.96 to 4.60 µs per record on the normal
chat mix, from 8.68 to 6.13 on the campaign mix and from 16.8 to 14.3 on the STOP storm when the
screen came; since it reads each step's own conditions (a command set apart, a leading keyword
after courtesy words: :mod:`worker.classify.screen`), 3.6-3.8 -> 2.4-2.5 µs (normal) and 4.8-5.0
-> 3.6 µs (campaign). About 9% of the normal mix's chat still reaches ``classify``: non-ASCII text
the fold table does not cover, chat after a leading keyword's first word ("help me with my
order"), and bitmap collisions. Without a C compiler at install time every record takes the full
path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from worker.classify.decide import SCREEN_LIMITS
from worker.classify.rules import RuleBook
from worker.classify.screen import fold_table
from worker.constants import MAX_FIELD_BYTES, MAX_TEXT_BYTES

try:
    from worker.stream._screen import screen as _screen

    COMPILED = True
except ImportError:  # built without a C compiler: every record takes the full path
    COMPILED = False


def screen_records(
    records: Sequence[Any], rulebook: RuleBook
) -> tuple[list[int], list[dict[str, Any] | None], int] | None:
    """``(loud, docs, last_chat)``: the indexes of the records that are not surely chat, in order;
    for each, its parsed document when it is valid in the common shape (``decode`` would accept it
    as is), else None (``decode`` must read it); and the index of the last record passed over as
    chat (-1: none). None when the screen was not built.
    """
    if not COMPILED:
        return None
    return _screen(
        records,
        orjson.loads,
        rulebook.chat_bitmaps(),
        SCREEN_LIMITS,
        rulebook.overridden,
        MAX_FIELD_BYTES,
        MAX_TEXT_BYTES,
        fold_table(),
    )
