"""The topic names, as one value passed around instead of five strings (and the extra inputs)."""

from __future__ import annotations

from dataclasses import dataclass

from worker import constants


@dataclass(frozen=True, slots=True)
class Topics:
    inbound: str = constants.TOPIC_INBOUND
    changes: str = constants.TOPIC_CHANGES
    replies: str = constants.TOPIC_REPLIES
    dead_letter: str = constants.TOPIC_DEAD_LETTER
    review: str = constants.TOPIC_REVIEW
    inputs: tuple[tuple[str, str], ...] = ()
    """Extra topics the classifier reads, each with its input format (``OPTOUT_INPUT_FORMATS``)."""
