"""schemas/openapi.json is what the app generates: it cannot drift from the code.

Regenerate it with ``optout api --openapi > schemas/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from worker.api.app import openapi_document
from worker.config import Settings

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    generated = openapi_document(Settings.from_mapping({}))
    committed = orjson.loads(SCHEMA.read_bytes())
    assert committed == generated, (
        "schemas/openapi.json is stale: optout api --openapi > schemas/openapi.json"
    )


def test_every_v1_route_needs_the_bearer_token_and_answers_problems() -> None:
    document = openapi_document(Settings.from_mapping({}))
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    v1 = {(path, method): op for path, ops in document["paths"].items() for method, op in ops.items()
          if path.startswith("/v1/")}  # fmt: skip
    assert set(v1) == {
        ("/v1/check", "get"),
        ("/v1/blocks", "get"),
        ("/v1/blocks", "post"),
        ("/v1/unblocks", "post"),
        ("/v1/history/{address}", "get"),
    }
    for op in v1.values():
        assert op["security"] == [{"HTTPBearer": []}]
        for status in ("401", "422", "429"):
            assert "application/problem+json" in op["responses"][status]["content"]
    # No route takes the account from the request: it comes from the token.
    for op in v1.values():
        names = {p["name"] for p in op.get("parameters", [])}
        assert not names & {"account", "account_id"}
    body = document["components"]["schemas"]["ChangeRequest"]
    assert "account" not in body["properties"]
    assert body["additionalProperties"] is False
