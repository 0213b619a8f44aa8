"""Fixtures that start real processes: the test database is PostgreSQL, the broker Redis, the
worker real. Registered for the whole suite by tests/conftest.py (``pytest_plugins``): integration
and browser tests share one session worker, never two on one broker (each would take the other's
tasks, with another media folder)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings

from evalhub import celery_app
from tests.generation.plugins import PLUGIN_ENV
from tests.integration.workers import QUEUES, SharedWorker, WorkerProcess, queue_keys


def per_test_process(url: str) -> str:
    """The Redis database of this test process: under pytest-xdist each process (``gw0``,
    ``gw1``, ...) takes its own, counting down from the given one, as pytest-django gives each
    its own test database; a broker shared by two processes' workers would mix their tasks."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not name.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) - int(name[2:])
    if database < 0:
        raise RuntimeError(f"Too many test processes for Redis databases below {url}.")
    return urlunsplit(parts._replace(path=f"/{database}"))


#: The workers' visibility timeout (seconds): a message a killed worker took is handed out
#: again once it has been unacknowledged this long (see workers.wait_redeliverable).
VISIBILITY_TIMEOUT_S = 5

REDIS_URL = per_test_process(os.environ.get("EVALHUB_TEST_REDIS_URL",
                                            "redis://127.0.0.1:6379/15"))
# Whatever this process sends goes to its own broker database, not only what the worker
# fixtures send: a task sent to another test process's broker would run in that process's
# worker, against that process's test database.
os.environ["CELERY_BROKER_URL"] = REDIS_URL
celery_app.conf.broker_url = REDIS_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Integration tests need Redis at {REDIS_URL} ({exc}); `make test` starts it.")
    client.flushdb()
    celery_app.conf.broker_url = REDIS_URL
    celery_app.conf.broker_transport_options = {"visibility_timeout": 5}
    return REDIS_URL


@pytest.fixture(scope="session")
def shared_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-media")


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("Integration tests need PostgreSQL: set DATABASE_URL (`make test` does).")
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def worker_env(django_db_setup, redis_url, shared_media_root) -> dict[str, str]:
    """Environment for a worker that shares the test database, broker and media folder."""
    return {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_url,
        # Short visibility timeout: a task whose worker was killed is redelivered in seconds.
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        "MEDIA_ROOT": str(shared_media_root),
        "EVALHUB_RANDOM_WEIGHTS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def shared_worker(worker_env, redis_url, tmp_path_factory) -> Iterator[SharedWorker]:
    """The worker kept across tests (see SharedWorker); it also knows the test generators."""
    shared = SharedWorker(env={**worker_env, **PLUGIN_ENV}, redis_url=redis_url,
                          log_dir=tmp_path_factory.mktemp("shared-worker"))
    yield shared
    shared.stop()


@pytest.fixture
def worker(shared_worker) -> Iterator[WorkerProcess]:
    """A worker for a test that does not kill it nor needs settings of its own: the shared
    one, whose log() shows this test's lines only. Every task queued here has run by the end."""
    yield shared_worker.acquire()
    shared_worker.release()


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """Start fresh worker processes on demand; all are stopped at the end of the test. Use it
    where a test kills a worker or gives it settings of its own."""
    started: list[WorkerProcess] = []

    def start(name: str = "w1", queues: str = QUEUES, **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(env={**worker_env, **extra_env}, log_path=tmp_path / f"{name}.log",
                               queues=queues, name=name)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


_BROKER = redis.Redis.from_url(REDIS_URL)  # connects on first use
# The fixtures that give a test a worker: the messages such a test queues are its worker's.
WORKER_FIXTURES = frozenset({"worker", "start_worker", "shared_worker"})


@pytest.fixture(autouse=True)
def _messages_of_a_test_without_worker_dropped(request) -> Iterator[None]:
    """A test without a worker can still queue real messages (a vote's leaderboard refresh,
    sent on commit, 30 s later). Nothing consumes them, and the rows they name are flushed with
    the test: left in the broker, they reached the shared worker of the next worker test of
    this process, which held the delayed ones until they were due, and that test's release
    waited its full 60 s for the queues to drain (a 62 s teardown in a fresh-clone run). They
    are dropped when such a test ends."""
    yield
    if WORKER_FIXTURES.isdisjoint(request.fixturenames):
        with contextlib.suppress(redis.RedisError):
            _BROKER.delete(*queue_keys(QUEUES.split(",")))
