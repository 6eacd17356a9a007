"""worker.stream.partition: a keyed record's partition is the Java client's, in C and in Python."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from worker.stream import partition
from worker.stream.partition import partition_for, python_partition

#: org.apache.kafka.common.utils.UtilsTest#testMurmur2: murmur2 as Java's signed int.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

JAR = Path.home() / ".cache/optout/kafka-4.4.0/libs/kafka-clients-4.4.0.jar"
JAVA_PROGRAM = Path(__file__).parent / "java" / "Murmur.java"


def _java_partition(vector: int, partitions: int) -> int:
    return (vector & 0x7FFFFFFF) % partitions


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    """The install builds it when it can: with a C compiler here, the fast path must be in use."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the pure-Python partitioner is in use, as designed")
    assert partition.COMPILED, "worker/stream/_murmur2.c was not built: reinstall (pip install -e .)"


@pytest.mark.parametrize("key", list(KAFKA_VECTORS))
@pytest.mark.parametrize("partitions", [1, 3, 4, 12, 100, 2**31 - 1])
def test_kafkas_own_vectors(key: bytes, partitions: int) -> None:
    expected = _java_partition(KAFKA_VECTORS[key], partitions)
    assert partition_for(key, partitions) == expected
    assert python_partition(key, partitions) == expected


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=10_000))
def test_same_as_aiokafka_for_any_bytes(key: bytes, partitions: int) -> None:
    assert partition_for(key, partitions) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.mark.skipif(not partition.COMPILED, reason="the C extension is not built")
@given(st.binary(max_size=300))
def test_the_compiled_murmur2_is_aiokafkas(key: bytes) -> None:
    from worker.stream import _murmur2

    assert _murmur2.murmur2(key) == aiokafka_murmur2(key)


def test_same_partition_as_the_java_client() -> None:
    java = shutil.which("java")
    if java is None or not JAR.is_file():
        pytest.skip(f"needs java and {JAR} (the Kafka distribution the integration tests download)")
    rng = random.Random(16)
    cases = [
        (rng.choice([1, 2, 3, 4, 6, 12, 64, 1000]), rng.randbytes(rng.randrange(0, 80))) for _ in range(2000)
    ]
    cases += [(4, f"+1555{n:07d}".encode()) for n in range(200)]  # subscriber-like keys
    cases += [(n, key) for key in KAFKA_VECTORS for n in (4, 7)]
    stdin = "".join(f"{n} {key.hex()}\n" for n, key in cases)
    classpath = [str(JAR), *(str(jar) for jar in JAR.parent.glob("slf4j-api-*.jar"))]  # it logs
    result = subprocess.run(
        [java, "-cp", os.pathsep.join(classpath), str(JAVA_PROGRAM)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    java_partitions = [int(line) for line in result.stdout.split()]
    assert java_partitions == [partition_for(key, n) for n, key in cases]
    assert java_partitions == [python_partition(key, n) for n, key in cases]
