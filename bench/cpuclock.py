"""CPU time of the benchmark's own process over its measured window.

Why a sampler: the window (first record to last record done) is known to each contender only
from inside its library (the classifier's ``RunStats``, Quix's and faust's callbacks), and we
cannot put a CPU reading at those instants in the classifier without editing it. So a daemon
thread records ``(time.monotonic(), time.process_time())`` every few milliseconds, and the CPU
spent between two monotonic instants is interpolated from the samples around them.

``time.process_time()`` is the whole process, every thread: librdkafka's threads (Quix),
aiokafka's event loop, the interpreter. It is not the broker's, which runs in its own process.
The sampler itself costs a GIL hand-over per sample: about 100 per second, well under 1% of a core.
"""

from __future__ import annotations

import bisect
import threading
import time

#: Seconds between samples: fine enough that the interpolation error (at most one interval of
#: CPU at each end) stays under 1% of a window of a few seconds.
INTERVAL_S = 0.01


def process_cpu_seconds() -> float:
    """User plus system CPU of this process so far, all threads."""
    return time.process_time()


class CpuTrace:
    """Samples this process's CPU clock against the monotonic clock on a daemon thread."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self.times: list[float] = []
        self.cpu: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-trace", daemon=True)

    def start(self) -> CpuTrace:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        # Both readings under the GIL, back to back: a consistent pair even if the thread was late.
        self.times.append(time.monotonic())
        self.cpu.append(time.process_time())

    def at(self, instant: float) -> float:
        """CPU seconds used by ``instant`` (monotonic), interpolated between the nearest samples."""
        times, cpu = self.times, self.cpu
        i = bisect.bisect_left(times, instant)
        if i == 0:
            return cpu[0]
        if i == len(times):
            return cpu[-1]
        t0, t1 = times[i - 1], times[i]
        share = (instant - t0) / (t1 - t0) if t1 > t0 else 1.0
        return cpu[i - 1] + share * (cpu[i] - cpu[i - 1])

    def between(self, start: float, end: float) -> float:
        """CPU seconds this process used between two monotonic instants."""
        return max(0.0, self.at(end) - self.at(start))
