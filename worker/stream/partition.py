"""Kafka's default partition for a keyed record, as the Java client computes it.

``Utils.toPositive(Utils.murmur2(key)) % numPartitions``: the same key lands on the same
partition whichever client (Java, librdkafka's ``murmur2_random``, aiokafka) produced it.

The C version (``worker/stream/_murmur2.c``, built by ``pip install`` when a C compiler is
there) takes about 35 ns per 25-byte key against about 5 µs for aiokafka's pure-Python
``murmur2``, the fallback when the extension was not built. ``tests/unit/stream/test_partition.py``
checks both against Kafka's own test vectors and each other, and against the Java client when
``java`` and the Kafka jar are present.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.partitioner import murmur2 as _py_murmur2


def python_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, in pure Python (aiokafka's murmur2)."""
    hashed: int = _py_murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


partition_for: Callable[[bytes, int], int]
try:
    from worker.stream._murmur2 import partition as partition_for

    COMPILED = True
except ImportError:  # no C compiler at install time
    partition_for = python_partition
    COMPILED = False
