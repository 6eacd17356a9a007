"""An address, a sender and a channel as the classifier keys them (pure), for ``optout check`` and
the API alike: one function, so the two cannot read an address differently."""

from __future__ import annotations

from worker.events.address import Countries, canonical_address, canonical_sender, split_prefix


def canonical_lookup(
    countries: Countries, address: str, account: str, sender: str | None, channel: str | None
) -> tuple[str, str | None, str | None]:
    """``(address, sender, channel)`` as the classifier keys them (:mod:`worker.events.address`),
    with the account's default country: ``whatsapp:+44 7700 900123`` or ``07700 900123`` may be
    asked about. A prefix names the channel; with no channel given, the address is read as a phone
    number (and checked on every channel)."""
    named = None
    if sender is not None:
        sender, named = canonical_sender(sender)
    found = canonical_address(address, channel or named or "sms", countries.of(account))
    return found.address, sender, split_prefix(address)[1] or named or channel
