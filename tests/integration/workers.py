"""Start and stop real Celery worker processes for integration tests."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from celery.utils.nodenames import host_format

REPO_ROOT = Path(__file__).resolve().parents[2]


PR_SET_PDEATHSIG = 1


def _die_with_the_tests() -> None:
    """In the child: SIGTERM when the test process dies, however it dies (Linux).

    Workers run in their own session (so kill() can take the whole group), which also means a
    killed pytest would leave them consuming the shared test queue, where they would take the
    next test run's tasks.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


#: The queues every test worker consumes (``-Q``).
QUEUES = "default,gpu"


class WorkerProcess:
    """A ``celery worker`` subprocess whose output goes to a log file."""

    def __init__(self, *, env: dict[str, str], log_path: Path, queues: str = QUEUES,
                 name: str = "w1") -> None:
        self.log_path = log_path
        self.nodename = host_format(f"{name}@%h")
        self._log = log_path.open("wb")
        self._log_start = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evalhub", "worker", "-Q", queues,
             "--concurrency", "1", "--pool", "prefork", "-n", f"{name}@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_the_tests,
        )

    def log(self) -> str:
        """The worker's output since it started, or since the last :meth:`mark_log`."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def mark_log(self) -> None:
        """From now on :meth:`log` starts here: a worker kept across tests shows each test only
        its own lines, so 'the worker ran task X' still means 'in this test'."""
        self._log_start = self.log_path.stat().st_size

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker gets no chance to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_beat(*, env: dict[str, str], folder: Path) -> subprocess.Popen:
    """A ``celery beat`` subprocess (its schedule file and log in ``folder``); stop it with
    ``terminate()``."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "evalhub", "beat", "--loglevel", "INFO",
         "--schedule", str(folder / "celerybeat-schedule")],
        cwd=REPO_ROOT, env=env, stdout=(folder / "beat.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_the_tests)


def queue_keys(queues: list[str]) -> list[str]:
    """The Redis keys holding the messages of ``queues``: kombu's Redis transport keeps a list
    per priority step, the queue's name and the name followed by 0x06 0x16 and the step."""
    return [f"{queue}{suffix}" for queue in queues
            for suffix in ("", *(f"\x06\x16{step}" for step in (3, 6, 9)))]


class SharedWorker:
    """One worker process kept for the whole session, for every test that needs "a worker".

    Starting a worker costs seconds of CPU (Django, Celery, torch imports), and a metric worker
    then spends half a minute building its random-weight backbones, which it keeps in memory:
    a kept worker pays both once. It consumes only while a test holds it: :meth:`acquire`
    (re)starts consuming, :meth:`release` waits until every queued task has run (so nothing of
    one test runs inside the next, nor during the database flush after the test) and then
    cancels its consumers, so that tests with fresh workers (killed, restarted, other settings)
    have the queues to themselves. A worker that died or does not drain in time is stopped and
    replaced by a fresh one at the next :meth:`acquire`.

    It is started from the test process's main thread, like every worker here: PR_SET_PDEATHSIG
    fires when the thread that forked the child ends, and the main thread lives as long as the
    test run, so a killed test run still takes the worker with it.
    """

    def __init__(self, *, env: dict[str, str], log_dir: Path, redis_url: str,
                 queues: str = QUEUES, name: str = "shared") -> None:
        self.env = env
        self.log_dir = log_dir
        self.redis_url = redis_url
        self.queues = queues.split(",")
        self.name = name
        self.worker: WorkerProcess | None = None
        self._starts = 0
        self._stale: set[bytes] = set()

    def acquire(self) -> WorkerProcess:
        """The shared worker, consuming every queue, its log marked at the start of the test."""
        if self.worker is not None and self.worker.process.poll() is not None:
            self.worker = None  # died (or was killed) since the last test: start a fresh one
        if self.worker is None:
            self._starts += 1
            self.worker = WorkerProcess(env=self.env, queues=",".join(self.queues),
                                        log_path=self.log_dir / f"{self.name}-{self._starts}.log",
                                        name=self.name)
            self.worker.wait_ready()
        else:
            self._control("add_consumer")
        self.worker.mark_log()
        # Messages a killed worker of an earlier test left unacknowledged are not this test's
        # to wait for (kombu redelivers them only after a sweep, up to ~100 s later).
        self._stale = set(self._redis().hkeys("unacked"))
        return self.worker

    def release(self, timeout: float = 60) -> None:
        """Wait until the queues are empty and no task is in flight, then stop consuming."""
        worker = self.worker
        if worker is None:
            return
        if worker.process.poll() is None and self._drained(timeout):
            try:
                self._control("cancel_consumer")
                return
            except RuntimeError:
                pass
        self.stop()  # dead, stuck or deaf: the next test gets a fresh worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def _control(self, command: str) -> None:
        """Add or cancel the worker's consumers through Celery's remote control (the broker)."""
        from evalhub import celery_app

        assert self.worker is not None
        for queue in self.queues:
            replies = getattr(celery_app.control, command)(
                queue, destination=[self.worker.nodename], reply=True, timeout=10)
            if not replies:
                raise RuntimeError(f"{self.worker.nodename} did not answer {command} {queue}")

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def _drained(self, timeout: float) -> bool:
        """True once no message waits in our queues and none delivered since :meth:`acquire`
        is unacknowledged (tasks ack late, so a running task's message stays in kombu's
        ``unacked`` hash), twice in a row half a second apart: a task that queues another on
        commit is seen through."""
        client = self._redis()
        keys = queue_keys(self.queues)
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            in_flight = set(client.hkeys("unacked")) - self._stale
            busy = sum(client.llen(key) for key in keys) + len(in_flight)
            quiet = quiet + 1 if busy == 0 else 0
            if quiet == 2:
                return True
            time.sleep(0.5)
        return False


def wait_redeliverable(redis_url: str, visibility_timeout: float) -> None:
    """Wait until every unacknowledged message in the broker was delivered more than
    ``visibility_timeout`` seconds ago (kombu's ``unacked_index`` holds each delivery's time).

    A worker restores such messages (a killed worker's) when it starts, then sweeps for them
    only every ~100 s (kombu's unacked_restore_interval x unacked_restore_throttle): a worker
    started before a killed worker's message has timed out finds it the next sweep, 100 s
    later. Start the worker that is to take it over after this."""
    client = redis.Redis.from_url(redis_url)
    delivered = [score for _, score in client.zrange("unacked_index", 0, -1, withscores=True)]
    if delivered:
        # Clocks: kombu stamps deliveries with time.time() on this machine.
        time.sleep(max(0.0, max(delivered) + visibility_timeout + 0.5 - time.time()))


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str,
               on_timeout: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{on_timeout()}")
