"""The dev stack's port probe: a port whose only use is a connection in TIME_WAIT is free."""

from __future__ import annotations

import socket

from worker.dev.stack import port_is_free


def _time_wait_port() -> int:
    """A port nothing listens on any more, with the server side of a closed connection in TIME_WAIT
    (what a recent HTTP request to a stopped worker's metrics port leaves behind)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port: int = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its side goes to TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    return port


def test_a_port_in_time_wait_is_free() -> None:
    assert port_is_free(_time_wait_port())


def test_a_listening_port_is_busy() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not port_is_free(server.getsockname()[1])
