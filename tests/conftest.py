"""Fixtures: a real Celery worker on the test database and a Redis database of its own."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from .workers import Worker, running_worker


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> None:
    """Users are made by the hundred in tests; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def static_files_without_collectstatic() -> Iterator[None]:
    """Pages rendered in the test process name static files by their plain names: the
    hashed names of the shipped storage need `collectstatic` first, which the web server
    tests run (tests/web_server.py) and check."""
    from django.test.utils import override_settings

    plain = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=plain):
        yield


# Kept by the flush below: what post_migrate would make again, the same rows.
_KEPT_TABLES = {"django_content_type", "auth_permission"}


@pytest.fixture(autouse=True, scope="session")
def quick_flush() -> Iterator[None]:
    """A transactional test ends by emptying every table. Django's `flush` TRUNCATEs them all
    and then runs post_migrate, which makes the content types and permissions again: 100 to
    150 ms on PostgreSQL after each of some 600 tests. A DELETE of each table in one
    transaction leaves the same: empty tables (the foreign keys are deferred, so in any
    order), the content types and permissions as post_migrate would make them, the
    sequences where they were (flush does not reset them either); in about 5 ms."""
    from django.db import connections, transaction
    from django.test import TransactionTestCase

    def empty_tables(self: TransactionTestCase) -> None:
        for name in self._databases_names(include_mirrors=False):  # type: ignore[attr-defined]
            connection = connections[name]
            tables = connection.introspection.django_table_names(
                only_existing=True, include_views=False
            )
            with transaction.atomic(using=name), connection.cursor() as cursor:
                for table in sorted(set(tables) - _KEPT_TABLES):
                    cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")

    original = TransactionTestCase._fixture_teardown  # type: ignore[attr-defined]
    TransactionTestCase._fixture_teardown = empty_tables  # type: ignore[attr-defined]
    yield
    TransactionTestCase._fixture_teardown = original  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="session")
def guard_stopped(django_db_setup: None) -> Iterator[None]:
    """Flows that some tests run in this process start its guard's watcher thread, which
    holds a database connection of its own: stopped before the test database is dropped
    (PostgreSQL refuses to drop a database that a session still uses)."""
    yield
    from executions.engine.guard import guard

    guard().stop()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Where `collectstatic` writes once per session for the web servers tests start."""
    return tmp_path_factory.mktemp("static")


@pytest.fixture
def token(worker: Any, django_user_model: Any) -> str:
    """An API token of a superuser, for calls to a web server the test started."""
    from knox.models import AuthToken

    user = django_user_model.objects.create_superuser("web-admin", password="p" * 12)
    return str(AuthToken.objects.create(user)[1])


@pytest.fixture(scope="session")
def redis_flushed() -> None:
    """Each test session starts on an empty Redis database (set by REDIS_URL)."""
    import redis

    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).flushdb()


# The worker groups the tests send executions to (their Celery queues are "<group>.<mode>").
TEST_GROUPS = (
    "default", "prio", "doomed", "late", "nowhere", "term", "spread", "limited", "solo", "other",
    "island", "watched", "dmz", "a", "depth", "refused", "sleepy", "errh", "replay",
)


@pytest.fixture(scope="session")
def broker_purged(redis_flushed: None) -> None:
    """On RabbitMQ the messages are not in the flushed Redis: the test groups' queues are
    purged instead, so that no message of an earlier session runs a new execution with the
    same id. (On Redis the flush did it already.)"""
    from executions.engine import broker

    if broker.is_amqp():
        broker.purge(f"{group}.{mode}" for group in TEST_GROUPS for mode in ("productive", "development"))


@pytest.fixture(scope="session")
def worker_process(
    django_db_setup: None, django_db_blocker: Any, broker_purged: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    """One worker with concurrency 2 serving both modes of the default group."""
    with running_worker(
        queues=["default.productive", "default.development"],
        concurrency=2,
        name="main",
        tmp_dir=tmp_path_factory.mktemp("workers"),
        # Frequent heartbeats let the fault tests use a short "worker lost" threshold.
        extra_env={"AUTOMATION_HEARTBEAT_SECONDS": "0.5"},
    ) as w:
        yield w


@pytest.fixture
def worker(worker_process: Worker, transactional_db: None) -> Iterator[Worker]:
    """The shared worker, left idle for the next test: whatever a test left running (a flow
    waiting for a form, a sleeper) is cancelled before the database is flushed."""
    yield worker_process
    from executions import engine
    from executions.models import Execution

    leftovers = Execution.objects.filter(status__in=engine.NOT_ENDED, parent__isnull=True)
    for pk in leftovers.values_list("pk", flat=True):
        engine.cancel_execution(pk)
    # Only a test with an execution that did not succeed (cancelled, failed, left running)
    # can leave a process busy: the others are not asked (a broadcast costs ~80 ms).
    unfinished = Execution.objects.exclude(status=Execution.Status.ENDED_SUCCESS).exists()
    if unfinished and not worker_process.wait_idle():
        # Stuck (an engine fault): reported with where it stands, and restarted, so that
        # the tests after this one do not fail for it.
        stacks = worker_process.stacks()
        worker_process.restart()
        warnings.warn(
            f"worker {worker_process.name} was still busy 15 s after the test and was "
            f"restarted; it stood at:\n{stacks}", stacklevel=1,
        )


@pytest.fixture
def admin(django_user_model: Any) -> Any:
    """A superuser, for tests about what the API does rather than who may do it."""
    return django_user_model.objects.create_superuser("root", password="p" * 12)


@pytest.fixture
def api(admin: Any) -> Any:
    """DRF's test client, authenticated as `admin`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin)
    return client


@pytest.fixture
def make_flow(db: None) -> Callable[..., Any]:
    """Create a stored flow from (dedented) source."""
    from executions.models import Flow

    def make(name: str, source: str, **fields: Any) -> Flow:
        return Flow.objects.create(name=name, script=textwrap.dedent(source), **fields)

    return make


@pytest.fixture
def run_flow() -> Callable[..., Any]:
    """Start a flow through the one way in and wait (bounded) until it ended."""
    from executions import engine

    def run(name: str, inputs: dict[str, Any] | None = None, timeout: float = 30, **kwargs: Any):
        execution = engine.start_execution(flow=name, input_value=inputs or {}, **kwargs)
        ended = engine.wait_for([execution.pk], timeout=timeout)[0]
        assert ended.is_ended, f"execution {ended.pk} still {ended.status} after {timeout} s"
        return ended

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults/ carries the `faults` marker (fault injection: killed
    workers, restarted services, shutdowns), so `-m faults` runs them as one group."""
    for item in items:
        if "faults" in item.path.parent.parts[-1:]:
            item.add_marker(pytest.mark.faults)


def pytest_report_header() -> str:
    """Which flow isolation the workers of this run have (tests/workers.py picks it)."""
    from executions.engine.isolation import isolation

    found = isolation()
    if found.refused:
        return f"flow isolation: none for this run's workers ({found.description})"
    return f"flow isolation: {found.description}"

