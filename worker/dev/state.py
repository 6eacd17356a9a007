"""Where a running ``optout dev`` is: a small state file in the data directory (``.optout/dev.json``).

``optout dev`` writes it once its servers and workers are up and removes it when it stops. Every
other command reads it when ``OPTOUT_DATABASE_URL`` / ``OPTOUT_KAFKA_BOOTSTRAP`` are not set, so
``optout check`` or ``optout produce`` reach the dev stack that is running (whatever ports it got)
and never start servers of their own. Pure standard library: importing it starts nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "dev.json"


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def write_state(data_dir: Path, **values: Any) -> Path:
    """Atomically write the state of this process's dev stack (its pid is added)."""
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps({"pid": os.getpid(), **values}, indent=2) + "\n")
    os.chmod(temporary, 0o600)  # it holds the database URL
    temporary.replace(path)
    return path


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The running dev stack's state, or None when there is none (no file, or its process is gone)."""
    try:
        state = json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(state.get("pid")):
        return None
    return state


def remove_state(data_dir: Path) -> None:
    """Remove the state file if this process wrote it."""
    path = state_path(data_dir)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
