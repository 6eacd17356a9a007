from collections.abc import Callable, Sequence
from typing import Any

def screen(
    records: Sequence[Any],
    loads: Callable[[bytes], Any],
    bitmaps: tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes],
    limits: tuple[int, int, int, int],
    overridden: frozenset[str],
    max_fields: int,
    max_text: int,
    fold_table: bytes,
    /,
) -> tuple[list[int], list[dict[str, Any] | None], int]: ...
