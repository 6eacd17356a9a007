from collections.abc import Sequence

CRC32C: str
"""Which CRC-32C the module uses: "sse4.2" (the instruction) or "table" (portable)."""

def encode(
    runs: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
    partitions: dict[str, int],
    keyless: dict[str, int] | None,
    batch_size: int,
    max_request_size: int,
    /,
) -> dict[tuple[str, int], list[tuple[bytearray, int]]] | int: ...
def finish(
    batch: bytearray,
    count: int,
    timestamp_ms: int,
    attributes: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    /,
) -> int: ...
def crc32c(data: bytes, /) -> int: ...
