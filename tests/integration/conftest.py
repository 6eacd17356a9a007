"""Real servers, started once per test session: a broker (Tansu or Apache Kafka) and Postgres.

The broker is Tansu unless ``--broker kafka`` or ``OPTOUT_TEST_BROKER=kafka`` asks for Apache Kafka
(:mod:`worker.dev.kafka_broker`: one KRaft process from Maven Central jars, its data in this run's
private temporary directory, stopped when the session ends). ``make test`` runs the suite on both.
A test that only makes sense on one broker says so with ``@pytest.mark.broker("kafka", reason=...)``.
Postgres is ``OPTOUT_DATABASE_URL`` when set, else an embedded server in a temporary directory.
Each test gets its own database (cloned from a migrated template, so it is fast) and its own
uuid-named topics and consumer groups, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.integration.helpers import cloned_database, create_topics
from worker.dev.kafka_broker import KafkaBroker, cached_libs, missing_tools
from worker.dev.stack import start_broker, start_postgres, with_database
from worker.store.migrate import migrate
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "broker(kind, reason): run this test only on that broker (tansu or kafka), else skip"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    kind = item.config.getoption("--broker")
    for mark in item.iter_markers("broker"):
        if kind not in mark.args:
            pytest.skip(f"{'/'.join(mark.args)} only: {mark.kwargs.get('reason', '')}".rstrip(": "))


@pytest.fixture(scope="session")
def broker_kind(request: pytest.FixtureRequest) -> str:
    """``tansu`` or ``kafka``: which broker this session's ``broker`` fixture runs."""
    kind = str(request.config.getoption("--broker"))
    if kind not in ("tansu", "kafka"):
        raise pytest.UsageError(f"OPTOUT_TEST_BROKER={kind!r}: use tansu or kafka")
    return kind


@pytest.fixture(scope="session")
def broker(broker_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's broker's bootstrap address; the broker is stopped when the session ends."""
    data = tmp_path_factory.mktemp("broker")
    if broker_kind == "tansu":
        running = start_broker(log_path=data / "tansu.log")
        try:
            yield running.bootstrap
        finally:
            running.stop()
        return
    missing = missing_tools(need_maven=cached_libs() is None)
    if missing is not None:
        pytest.exit(f"OPTOUT_TEST_BROKER=kafka needs {missing}", returncode=4)
    # The tests use 2 s sessions so that rebalances are quick; Kafka refuses under 6 s by default.
    kafka = KafkaBroker(data / "kafka", config={"group.min.session.timeout.ms": "1000"})
    try:
        kafka.start()
        yield kafka.bootstrap
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("OPTOUT_DATABASE_URL")
    if external:
        yield external
        return
    data = tmp_path_factory.mktemp("pg") / "data"
    server = start_postgres(data, cleanup_mode="delete")
    yield server.url
    server.server.cleanup()  # stopped here, not at exit: its directory is removed after the run


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> AsyncIterator[str]:
    name = f"optout_tpl_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await migrate(with_database(postgres_url, name))
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with cloned_database(postgres_url, template_database, "optout_t_") as url:
        yield url


@pytest.fixture
async def topics(broker: str) -> Topics:
    """uuid-named topics for this test (4 partitions each; the change topic compacted)."""
    return await create_topics(broker)


@pytest.fixture
def group_suffix() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
