"""Every error of the API in one shape: RFC 9457 problem details (``application/problem+json``).

``type`` (a URN naming the kind of problem, stable for clients to branch on), ``title`` (the same
for every problem of a type), ``status`` (the HTTP status) and ``detail`` (this occurrence, one
line). Validation errors add ``errors`` (where and what, per field). FastAPI's own answers (its
422, Starlette's 404 and 405) are replaced by the same shape, so a client parses one format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.errors import OptoutError

MEDIA_TYPE = "application/problem+json"
_URN = "urn:optout:problem:"

#: type slug and title per status of the problems this API answers with.
_KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing or invalid API token"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "The request is not valid"),
    429: ("rate-limited", "Too many requests for this token"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "A service the API needs is unavailable"),
}


def problem_type(status: int) -> str:
    return _URN + _KINDS.get(status, ("error", ""))[0]


class ProblemError(Exception):
    """Raised by a route or a dependency; answered as problem+json with ``status``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    slug, title = _KINDS.get(status, ("error", "Error"))
    body = {"type": _URN + slug, "title": title, "status": status, "detail": detail, **(extra or {})}
    return Response(
        orjson.dumps(body), status_code=status, headers=dict(headers or {}), media_type=MEDIA_TYPE
    )


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="optout"'})


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as ``{"field": "query.address", "problem": "..."}``, without the input
    values (which may be long, or someone's token)."""
    found = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        found.append({"field": where, "problem": str(error.get("msg", "invalid"))})
    return found


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(exc.status, exc.detail, exc.headers, exc.extra)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:3]) or "invalid request"
        return problem_response(422, detail, extra={"errors": errors})

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}: see /openapi.json"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(exc.status_code, detail, exc.headers)

    async def on_outage(request: Request, exc: Exception) -> Response:
        # Postgres or Kafka down, or the database not migrated: the message is one line, no secret.
        return problem_response(503, str(exc), {"Retry-After": "5"})

    async def on_bug(request: Request, exc: Exception) -> Response:
        return problem_response(500, "internal error (logged by the server)")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OptoutError, on_outage)
    app.add_exception_handler(Exception, on_bug)


#: The problem document, for the OpenAPI responses of every route.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": ["urn:optout:problem:unauthorized"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation errors only: each field and its problem.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route may answer with."""
    return {
        status: {
            "description": _KINDS[status][1],
            "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }
