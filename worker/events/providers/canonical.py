"""The canonical format (``schemas/inbound-message.v1.json``) as a provider decoder.

For an extra topic declared ``canonical`` in ``OPTOUT_INPUT_FORMATS``: the classifier itself
never calls this for canonical topics, it runs :func:`worker.events.inbound.decode` in its hot loop
directly; this wrapper exists so every format has the same shape (and the same tests).
"""

from __future__ import annotations

from worker.events import inbound
from worker.events.providers import AccountMap, Decoded


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    """One document per record; the record timestamp and the account map are not used."""
    return [inbound.decode(raw)]
