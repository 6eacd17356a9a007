"""The source of an aiokafka function, for the patches that are written against its code.

:mod:`worker.stream.frames` and :mod:`worker.stream.produce_request` each install themselves only
while the aiokafka lines they rely on are still there; both read that source here, once per process.
"""

from __future__ import annotations

import inspect
from typing import Any


def source_of(function: Any) -> str | None:
    """``function``'s source, or None where it cannot be read (no such function, no source files)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None
