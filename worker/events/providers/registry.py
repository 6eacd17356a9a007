"""Format name -> decoder (kept out of the package's ``__init__`` so the settings can import the
names without the decoders)."""

from __future__ import annotations

from types import MappingProxyType

from worker.events.providers import Decoder, canonical, cmcom, eightbyeight, infobip, twilio, whatsapp

DECODERS: MappingProxyType[str, Decoder] = MappingProxyType(
    {
        "canonical": canonical.decode,
        "eightbyeight": eightbyeight.decode,
        "infobip": infobip.decode,
        "twilio": twilio.decode,
        "cmcom": cmcom.decode,
        "whatsapp": whatsapp.decode,
    }
)
