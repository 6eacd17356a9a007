"""Kafka's default partition for a keyed record, as the Java client computes it.

``Utils.toPositive(Utils.murmur2(key)) % numPartitions``: the same key lands on the same
partition whichever client (Java, librdkafka's ``murmur2_random``, aiokafka) produced it.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (Kafka's default partitioner)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions
