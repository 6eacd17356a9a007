"""``keep_big_buffers`` sets glibc's thresholds once, and leaves an operator's own settings alone."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from worker.stream.allocator import keep_big_buffers


@pytest.mark.parametrize(
    "name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"]
)
def test_the_operators_allocator_settings_win(name: str) -> None:
    assert keep_big_buffers({name: "1048576"}) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_glibc_takes_the_thresholds() -> None:
    """In a process of its own: the thresholds are process-wide. mallopt answers 1 when it took them."""
    code = "from worker.stream.allocator import keep_big_buffers; print(keep_big_buffers({}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
