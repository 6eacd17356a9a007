"""Access to the JSON Schemas in ``schemas/`` (installed as the ``worker.schema_files`` package).

jsonschema is imported when the first validator is built, not with this module: the send-service
library reads snapshot manifests through here and should not pay for it at import time.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

RULES = "rules.v1.json"
INBOUND = "inbound-message.v1.json"
CHANGE = "blocklist-change.v1.json"
REPLY = "reply-request.v1.json"
DEAD_LETTER = "dead-letter.v1.json"
REVIEW = "review-request.v1.json"
IMPORT = "blocklist-import.v1.json"
MANIFEST = "snapshot-manifest.v1.json"
SNAPSHOT_ENTRY = "snapshot-entry.v1.json"
WEBHOOK_DEAD_LETTER = "webhook-dead-letter.v1.json"


def load(name: str) -> dict[str, Any]:
    raw = importlib.resources.files("worker.schema_files").joinpath(name).read_bytes()
    schema: dict[str, Any] = orjson.loads(raw)
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A validator built once per schema: building one is costly and schemas never change at run time."""
    from jsonschema import Draft202012Validator

    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
