from collections.abc import Callable
from typing import Any

def change_facts(value: bytes, head: bytes, /) -> tuple[str, int, str, bool] | None: ...
def confirm(
    entries: dict[bytes, Any],
    now: int,
    window: int,
    changes: list[tuple[bytes, bytes]],
    first: int,
    replies: list[tuple[bytes, bytes]],
    reply_mark: int,
    opt_out: bool,
    head: bytes,
    known: Callable[[Any], Any],
    parse: Callable[[bytes | None], Any],
    decide: Callable[[Any, list[Any], int], bool],
    /,
) -> bool: ...
def forget_older(entries: dict[bytes, Any], horizon: int, /) -> int: ...
