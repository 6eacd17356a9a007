"""Produce requests encoded in one pass over their record batches.

aiokafka encodes a produce request through its generic protocol types: each record batch is copied
by ``Bytes.encode`` (length + bytes), then by the ``b"".join`` of every ``Schema`` and ``Array`` it
is nested in (partition, partitions, topic, topics, request): six copies of every batch before
the connection copies it twice more (header + body, size + message). A STOP storm's classifier
writes ~180 MB of change events and replies a run, and those copies plus the generic encoders'
Python were ~8% of its busy time (py-spy; ``bytes_join`` and ``bytes_concat`` the top callers of
``memmove`` under perf). :class:`OnePassProduceRequest` writes the same bytes with one join,
which takes the connection's header and size prefix along (:class:`Unjoined`).

:func:`install` has aiokafka's sender build these instead of its ``ProduceRequest`` (once per
process; every producer gets them, the bytes are the same). It checks that the request's layout
is the one written for and leaves aiokafka's own otherwise (``tests/unit/stream/test_produce_request.py``
compares the bytes for every version aiokafka sends).
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from aiokafka.conn import AIOKafkaConnection
from aiokafka.producer import sender as _sender
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.protocol.types import Array, Bytes, Int16, Int32, String

from worker.stream.aiokafka_source import source_of

log = logging.getLogger("optout.kafka")

_HEAD = struct.Struct(">hii")  # required_acks, timeout, topic count
_SHORT = struct.Struct(">h")  # a string's length
_INT = struct.Struct(">i")  # a partition count
_PARTITION = struct.Struct(">ii")  # partition, the record set's length (-1: none)


def _encode(request: Any) -> Unjoined | bytes:
    """``request.encode()``: the bytes aiokafka's Schema writes (v0-v2: no transactional id), left
    in pieces for the connection to join once with its prefixes when it frames by adding."""
    pieces = _pieces(request)
    if _FRAMED_BY_ADDING[0]:
        return Unjoined(pieces, sum(map(len, pieces)))
    return b"".join(pieces)


class Unjoined:
    """A produce request's wire pieces, joined once with the connection's header and size.

    aiokafka's connection frames a request as ``size + message`` after ``message = header.encode()
    + request_struct.encode()`` (``AIOKafkaConnection.send``): two more copies of every request, a
    few MB each in a STOP storm (``bytes_concat`` 2.1% of the classifier's samples under perf,
    the biggest caller of ``memmove`` after the fetch buffer). ``bytes`` has no numeric ``+``, so
    ``header + unjoined`` calls :meth:`__radd__`, which keeps the header as one more piece;
    ``len()`` is the wire length; the size's ``+`` then joins everything, once.
    :func:`install` uses it only while the connection's code is those two lines.
    """

    __slots__ = ("_headed", "_length", "_pieces")

    def __init__(self, pieces: list[Any], length: int, headed: bool = False) -> None:
        self._pieces = pieces
        self._length = length
        self._headed = headed

    def __len__(self) -> int:
        return self._length

    def __radd__(self, prefix: bytes) -> Unjoined | bytes:
        if self._headed:  # the size: the whole frame, in one copy
            return b"".join([prefix, *self._pieces])
        return Unjoined([prefix, *self._pieces], len(prefix) + self._length, headed=True)

    def __bytes__(self) -> bytes:
        return b"".join(self._pieces)


def _pieces(request: Any) -> list[Any]:
    """The request's wire form as the pieces :func:`_encode` joins."""
    pieces: list[Any] = []
    append = pieces.append
    if request.API_VERSION >= 3:
        transactional_id = request.transactional_id
        if transactional_id is None:
            append(_SHORT.pack(-1))
        else:
            name = str(transactional_id).encode()
            append(_SHORT.pack(len(name)))
            append(name)
    topics = request.topics
    append(_HEAD.pack(request.required_acks, request.timeout, len(topics)))
    for topic, partitions in topics:
        name = str(topic).encode()
        append(_SHORT.pack(len(name)))
        append(name)
        append(_INT.pack(len(partitions)))
        for partition, records in partitions:
            if records is None:
                append(_PARTITION.pack(partition, -1))
            else:
                append(_PARTITION.pack(partition, len(records)))
                append(records)
    return pieces


def _one_pass(struct_class: type[Any]) -> type[Any]:
    """``struct_class`` with :func:`_encode` for its ``encode()``, made once per class."""
    made = _ONE_PASS.get(struct_class)
    if made is None:
        namespace = {"encode": _encode, "__doc__": struct_class.__doc__}
        made = type(struct_class.__name__, (struct_class,), namespace)
        _ONE_PASS[struct_class] = made
    return made


_ONE_PASS: dict[type[Any], type[Any]] = {}

#: Whether aiokafka's connection frames a request by ``+`` (set by :func:`install`).
_FRAMED_BY_ADDING = [False]

#: The lines of ``AIOKafkaConnection.send`` that :class:`Unjoined` is written for.
_FRAMING = ("message = header.encode() + request_struct.encode()", "self._writer.write(size + message)")


def _framed_by_adding() -> bool:
    """Whether ``AIOKafkaConnection.send`` still frames a request by the two ``+`` of
    :data:`_FRAMING` (its source unreadable: no, and the request is encoded as bytes)."""
    source = source_of(AIOKafkaConnection.send)
    return source is not None and all(line in source for line in _FRAMING)


class OnePassProduceRequest(ProduceRequest):  # type: ignore[misc]
    """aiokafka's ``ProduceRequest`` whose wire form is written by :func:`_encode`."""

    def build(self, request_struct_class: type[Any]) -> Any:
        return super().build(_one_pass(request_struct_class))


def _layout_known(struct_class: type[Any]) -> bool:
    """Whether ``struct_class`` is laid out as :func:`_encode` writes it."""
    fields = getattr(struct_class, "SCHEMA", None)
    if fields is None:
        return False
    names, types = fields.names, fields.fields
    head = ("transactional_id", "required_acks", "timeout", "topics")
    expected = head if struct_class.API_VERSION >= 3 else head[1:]
    if tuple(names) != expected or types[-3:-1] != (Int16, Int32) or not isinstance(types[-1], Array):
        return False
    if struct_class.API_VERSION >= 3 and not isinstance(types[0], String):
        return False
    topic = types[-1].array_of
    if tuple(topic.names) != ("topic", "partitions") or not isinstance(topic.fields[0], String):
        return False
    partitions = topic.fields[1]
    if not isinstance(partitions, Array):
        return False
    partition = partitions.array_of
    return tuple(partition.names) == ("partition", "messages") and tuple(partition.fields) == (Int32, Bytes)


def install() -> bool:
    """Have aiokafka's sender build :class:`OnePassProduceRequest` (once per process). False, with
    one warning, when a request version's layout is not the one :func:`_encode` writes."""
    built = getattr(_sender, "ProduceRequest", None)
    if built is OnePassProduceRequest:
        return True
    versions: tuple[type[Any], ...] = getattr(ProduceRequest, "_CLASSES", ())
    if built is not ProduceRequest or not versions or not all(_layout_known(cls) for cls in versions):
        log.warning("aiokafka's produce request has changed: it is encoded the usual way (slower)")
        return False
    _FRAMED_BY_ADDING[0] = _framed_by_adding()
    _sender.ProduceRequest = OnePassProduceRequest
    return True
