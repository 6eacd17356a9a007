"""``optout webhook add|list|remove``: the I/O shell of the endpoint table (one-shot commands)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson

from worker.errors import ConfigError
from worker.events.inbound import format_instant
from worker.webhooks.endpoints import check_categories, check_secret, check_url, new_secret
from worker.webhooks.store import add_endpoint, disable_endpoint, list_endpoints


def _line(row: dict[str, Any]) -> str:
    shown = {
        key: format_instant(value) if hasattr(value, "astimezone") else value for key, value in row.items()
    }
    return orjson.dumps(shown, option=orjson.OPT_SORT_KEYS).decode()


def run_webhook(dsn: str, args: argparse.Namespace) -> int:
    """Exit 0 when done; 1 when ``remove`` found no such enabled endpoint. Bad flags: ConfigError."""
    return asyncio.run(_run(dsn, args))


async def _run(dsn: str, args: argparse.Namespace) -> int:
    if args.action == "add":
        if not args.account or not args.url:
            raise ConfigError("optout webhook add needs --account and --url")
        try:
            url = check_url(args.url)
            secret = check_secret(args.secret) if args.secret else new_secret()
            categories = check_categories(args.category)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        endpoint = await add_endpoint(dsn, args.account, url, secret, categories)
        row: dict[str, Any] = {
            "id": endpoint.id,
            "account_id": endpoint.account_id,
            "url": endpoint.url,
            "categories": sorted(endpoint.categories),
            "created_at": endpoint.created_at,
        }
        if not args.secret:  # generated: shown this once, never again (list does not show it)
            row["secret"] = secret
        print(_line(row))
        return 0
    if args.action == "list":
        for found in await list_endpoints(dsn, args.account, disabled=args.disabled):
            print(_line(found))
        return 0
    if args.id is None:
        raise ConfigError("optout webhook remove needs the endpoint's ID (see optout webhook list)")
    if not await disable_endpoint(dsn, args.id, args.account):
        of = f" of account {args.account}" if args.account else ""
        print(f"optout: no enabled webhook endpoint {args.id}{of}", file=sys.stderr)
        return 1
    print(f"removed  webhook endpoint {args.id}")
    return 0
