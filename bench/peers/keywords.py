"""The peers' whole job: an exact keyword match on the stripped, uppercased text.

This is deliberately the simplest version of the job, the one a stream-framework user writes in
ten lines: no Unicode folding, no punctuation, no phrases, no languages, no scopes, no dead
letters. It catches "STOP" and " stop\\n" but not "Stop!", "ＳＴＯＰ" or "stop texting me pls",
so on the benchmark's traffic it emits fewer events than the classifier does (the report shows
how many). Both peers import it, so they do the same work and differ only in the framework.
"""

from __future__ import annotations

from typing import Any

#: Keyword -> the kind of the one output record a match produces.
ACTIONS: dict[str, str] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "opt_out"),
    **dict.fromkeys(("START", "UNSTOP"), "opt_in"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}


def action_for(text: str) -> str | None:
    """``"opt_out"``, ``"opt_in"``, ``"help"`` or ``None`` for a whole-message keyword match."""
    return ACTIONS.get(text.strip().upper())


def event_for(mo: dict[str, Any]) -> dict[str, Any] | None:
    """The output record for an inbound MO, or ``None`` when it is not a keyword.

    Raises ``KeyError``/``TypeError``/``AttributeError`` on a malformed MO; each peer skips those
    the way its framework lets a user skip a bad record.
    """
    action = action_for(mo["text"])
    if action is None:
        return None
    return {
        "action": action,
        "message_id": mo["message_id"],
        "channel": mo["channel"],
        "from": mo["from"],
        "to": mo["to"],
        "account_id": mo["account_id"],
        "subaccount_id": mo.get("subaccount_id"),
        "received_at": mo["received_at"],
    }
