"""Postgres: the blocklist store and its migrations."""

from worker.store.postgres import ApplyResult, Store

__all__ = ["ApplyResult", "Store"]
