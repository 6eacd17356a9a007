"""Provider payloads: one pure decoder per input format, from a record to canonical inbound documents.

The classifier reads the inbound topic in the canonical format (``schemas/inbound-message.v1.json``,
:func:`worker.events.inbound.decode`) and, per ``OPTOUT_INPUT_FORMATS``, extra topics that carry a
provider's own webhook bodies as the receiver got them: 8x8, Infobip, Twilio, CM.com and Meta's
WhatsApp Cloud API. Each format is a module here with one function,
``decode(raw, timestamp_ms, accounts) -> list[(document, received_at)]``: every document it returns
is a canonical one, checked by the canonical decoder itself (:func:`common.finish`), so a provider
topic can never let through what the inbound topic would refuse. Pure: no I/O, no clock.

This module is imported by the settings (for the format names), so it stays free of the decoders;
:mod:`worker.events.providers.registry` maps a name to its decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

CANONICAL = "canonical"
#: Every input format, as ``OPTOUT_INPUT_FORMATS`` and the rules file name them.
FORMAT_NAMES: tuple[str, ...] = (CANONICAL, "eightbyeight", "infobip", "twilio", "cmcom", "whatsapp")
#: The provider formats (all but canonical): those whose account ids the rules file can map.
PROVIDER_FORMATS: tuple[str, ...] = FORMAT_NAMES[1:]

Decoded = tuple[dict[str, Any], datetime]
"""A canonical inbound document and its ``received_at``, as :func:`worker.events.inbound.decode`
returns them."""

AccountMap = Mapping[tuple[str, str], tuple[str, str | None]]
"""(format, provider account id) -> (our account id, our subaccount id or None); provider account
id ``"*"`` stands for every id of that format (the rules file's ``provider_accounts``)."""

Decoder = Callable[[bytes | None, int, AccountMap], list[Decoded]]
"""``decode(value, record timestamp in ms, accounts)``: the documents of one record, or InputError."""
