"""Rules-file changes without a restart: the classifier reloads ``OPTOUT_RULES`` on SIGHUP and when
the file changes (its mtime, size or inode, looked at every :data:`POLL_SECONDS`: no watcher
dependency, and it works on every file system and on a Kubernetes ConfigMap's symlink swap).

A new file is validated exactly as at start (:func:`worker.classify.rulesfile.parse_rules`, one
line on error) from the same bytes it is hashed from; a bad one keeps the rules in use and logs
one line (``optout_rules_reloads_total{result="rejected"}``). The swap happens between batches:
:meth:`RulesReloader.poll` runs after each poll of the input, before the batch it fetched is
classified, and the loop reads :attr:`RulesReloader.current` once per batch. Compiling a rule set
takes a fraction of a second, in a thread, so the change-topic tail and the heartbeat keep running.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from worker.classify.rules import RuleBook
from worker.classify.rulesfile import parse_rules
from worker.errors import ConfigError
from worker.ops.metrics import ClassifierMetrics

log = logging.getLogger("optout.classifier")

#: How often the rules file's metadata is looked at.
POLL_SECONDS = 2.0
#: Hex digits of the rules' sha256 shown in logs and in ``optout_rules_info``.
DIGEST_CHARS = 12


@dataclass(frozen=True, slots=True)
class FileState:
    """What a rewrite changes: a rename over the file (editors, ConfigMaps) changes the inode."""

    mtime_ns: int
    size: int
    inode: int


def file_state(path: Path) -> FileState | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileState(st.st_mtime_ns, st.st_size, st.st_ino)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:DIGEST_CHARS]


class RulesReloader:
    """Holds the classifier's current :class:`RuleBook` and replaces it when the file changes."""

    def __init__(
        self,
        path: str,
        rulebook: RuleBook,
        metrics: ClassifierMetrics | None = None,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.path = Path(path) if path else None
        self.current = rulebook
        self._metrics = metrics
        self._interval = interval
        self._requested = False
        self._next = time.monotonic() + interval
        self._seen: FileState | None = None
        self.digest = "builtin"
        """The sha256 prefix of the rules file in use ("builtin" without one)."""
        if self.path is not None:
            self._seen = file_state(self.path)
            try:
                self.digest = digest(self.path.read_bytes())
            except OSError:
                self.digest = "unreadable"
        self._publish()

    def request(self) -> None:
        """Reload at the next poll whether or not the file looks changed (SIGHUP)."""
        self._requested = True

    async def poll(self) -> bool:
        """Reload if asked to or if the file changed; True if the rules were replaced. Cheap when
        nothing is due: a clock read."""
        requested = self._requested
        now = time.monotonic()
        if not requested and now < self._next:
            return False
        self._next = now + self._interval
        self._requested = False
        if self.path is None:
            if requested:
                log.info("SIGHUP: no rules file to reload (OPTOUT_RULES is empty; the built-in rules stay)")
            return False
        state = file_state(self.path)
        if not requested and state == self._seen:
            return False
        self._seen = state
        why = "SIGHUP" if requested else "the file changed"
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            self._rejected(why, f"rules file {self.path}: cannot read: {exc.strerror}")
            return False
        found = digest(raw)
        if found == self.digest:
            if requested:
                log.info("rules file %s unchanged (sha256 %s); nothing to reload", self.path, found)
            return False
        try:
            rulebook = await asyncio.to_thread(_compile, raw, self.path)
        except ConfigError as exc:
            self._rejected(why, str(exc))
            return False
        except Exception as exc:  # a file the validation let through but compiling refused: never fatal
            self._rejected(why, f"rules file {self.path}: {type(exc).__name__}: {exc}")
            return False
        self.current = rulebook
        self.digest = found
        self._publish()
        if self._metrics is not None:
            self._metrics.rules_reloads.labels("ok").inc()
        log.info("rules reloaded from %s (%s): sha256 %s, from the next batch on", self.path, why, found)
        return True

    def _rejected(self, why: str, error: str) -> None:
        if self._metrics is not None:
            self._metrics.rules_reloads.labels("rejected").inc()
        log.error("rules not reloaded (%s), keeping sha256 %s: %s", why, self.digest, error)

    def _publish(self) -> None:
        if self._metrics is None:
            return
        info = self._metrics.rules_info
        info.clear()
        info.labels(self.digest).set(1)
        self._metrics.rules_loaded.set(time.time())


def _compile(raw: bytes, path: Path) -> RuleBook:
    """The new rules, with their chat screen's bitmaps: both built off the event loop, so the
    batch after a reload pays for neither."""
    rulebook = parse_rules(raw, path)
    rulebook.chat_bitmaps()
    return rulebook
