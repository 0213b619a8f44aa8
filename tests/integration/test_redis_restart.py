"""Redis killed (SIGKILL) and restarted while generation batches wait in the queue.

The test runs its own ``redis-server`` on a free port (the machine's Redis is shared with other
test runs, so it is never restarted here), configured as docker-compose's: no RDB snapshots
(``--save ''``), an append-only file. A worker consumes from it; a generated run is split into
batches, the first is running, the others are queued. Redis is killed with SIGKILL and started
again on the same files: the queued batches are still there, the worker reconnects on its own
and finishes the run. Counted in rows: every (prompt, seed) item stored exactly once, the run
completed with no failure.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest
import redis

from evalhub import celery_app
from evalhub.generation.services import generation_launch
from evalhub.runs.models import GenerationRun, Image, RunSource, RunStatus
from tests.factories import CheckpointFactory, GenerationRunFactory, PromptFactory
from tests.generation.plugins import PLUGIN_ENV, PLUGINS
from tests.integration.workers import _die_with_the_tests, wait_until
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]


class RedisServer:
    """A private ``redis-server`` process whose files live in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--protected-mode", "no"],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT,
            preexec_fn=_die_with_the_tests)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._answers(client), timeout=20, what="redis-server",
                   on_timeout=lambda: (self.folder / "redis.log").read_text())

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write; only what the append-only file holds."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.fail("redis-server is missing: scripts/ensure_system_packages.sh installs it")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@contextmanager
def tasks_sent_to(url: str) -> Iterator[None]:
    """This process's Celery app sends to ``url`` meanwhile. The app keeps its connection and
    producer pools once made, so they are dropped on the way in and out."""

    def reset_pools() -> None:
        # app.pool comes from kombu's global registry (keyed by the broker URL): a pool only
        # closed stays there and is handed back, closed, when the URL is set back ("Acquire
        # on closed pool" in the next test of this process). reset() closes and forgets them.
        kombu.pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    keys = ("broker_url", "broker_write_url", "broker_read_url")
    previous = {key: celery_app.conf[key] for key in keys}
    reset_pools()
    celery_app.conf.update({key: url for key in keys})
    try:
        yield
    finally:
        reset_pools()
        celery_app.conf.update(previous)


def _queued(client: redis.Redis, queue: str = "gpu") -> int:
    # kombu's Redis transport keeps one list per priority step of a queue.
    return sum(client.llen(key) for key in
               (queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))))


def _finished(run: GenerationRun) -> bool:
    run.refresh_from_db()
    return run.status in (RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED)


def test_queued_batches_survive_a_redis_kill_and_run_once(private_redis, start_worker,
                                                          settings):
    settings.EVALHUB_GENERATORS = PLUGINS
    run = GenerationRunFactory(checkpoint=CheckpointFactory(generator="test-slow"),
                               source=RunSource.GENERATED, seeds=[0, 1],
                               parameters={"delay_s": 0.3})
    for position in range(6):
        PromptFactory(prompt_set=run.prompt_set, position=position, text=f"prompt {position}")
    worker = start_worker("through-restart", CELERY_BROKER_URL=private_redis.url,
                          **PLUGIN_ENV)

    with tasks_sent_to(private_redis.url):
        batches = generation_launch(run=run, batch_items=2)
    assert batches == 6
    wait_until(lambda: run.images.exists(), timeout=60, what="the first images",
               on_timeout=worker.log)
    queued_before = _queued(private_redis.client())
    assert queued_before >= 3  # batches still waiting in Redis when it dies

    private_redis.kill()
    private_redis.start()
    assert _queued(private_redis.client()) >= queued_before - 1  # the queue came back

    wait_until(lambda: _finished(run), timeout=180, what="run finished after the restart",
               on_timeout=worker.log)
    assert (run.status, run.items_done, run.items_failed) == (RunStatus.COMPLETED, 12, 0)
    per_item = Counter(Image.objects.filter(run=run).values_list("prompt_id", "seed"))
    assert len(per_item) == 12 and set(per_item.values()) == {1}
    assert worker.process.poll() is None  # the same worker, reconnected
    assert _queued(private_redis.client()) == 0
