"""Run EvalHub on the embedded default: web server and real Celery workers, one command.

Two workers, one per queue, as a deployment has (docs/deployment.md): the ``gpu`` queue's
(generation batches, metric shards: minutes of work each on a CPU) and the ``default``
queue's (campaign builds, previews, display copies, tiles, video renditions, leaderboard
refreshes: short tasks the pages wait for). One worker for both made a campaign's build wait
behind a run's metric shards.

Stopping (Ctrl-C or SIGTERM) is a warm shutdown, as for Celery itself: the workers take no new
task and finish the one in hand, for up to ``--stop-timeout`` seconds (default 600); a second
Ctrl-C (or SIGTERM) stops them at once (Celery's cold shutdown), a third kills them. Whatever
a worker stopped that way, killed, or crashed left unfinished is resumed at the next start
(``evalhub.core.recovery``): the filesystem broker never hands a task out again once a
worker has fetched it. After a warm stop nothing was lost (the tasks in hand finished, the
queued ones wait in the broker's folder), so the next start resumes nothing: a mark in the var
folder (``CLEAN_STOP_MARK``) says so.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from evalhub.core.demo import demo_logins
from evalhub.core.recovery import resume_work, unfinished_work

GUNICORN_CONFIG = Path(__file__).resolve().parents[3] / "config" / "gunicorn.conf.py"

#: The workers, by name, and the queue each consumes (module doc).
WORKER_QUEUES = {"worker": "default", "gpu-worker": "gpu"}
#: How long a stop waits for a worker to finish the task in hand (a generation batch, a
#: metric shard, a tile pyramid) before it is killed.
STOP_TIMEOUT_SECONDS = 600
#: After a second Ctrl-C: how long the worker has to cancel its task and exit.
COLD_STOP_SECONDS = 10
#: Written in VAR_DIR when the workers stopped warm; removed at the next start, which then
#: resumes nothing (module doc). Absent after a kill, a crash or a cold stop.
CLEAN_STOP_MARK = "embedded-stopped-cleanly"


class Command(BaseCommand):
    help = ("Migrate, resume what a previous run left unfinished, seed the demo, then run "
            "gunicorn and two Celery workers (queues default and gpu) until interrupted "
            "(Ctrl-C: the workers finish their tasks first; Ctrl-C again: stop now).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000,
                            help="port to listen on (default 8000)")
        parser.add_argument("--no-demo", action="store_true",
                            help="do not seed the demo project and its users")
        parser.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT_SECONDS,
                            metavar="SECONDS",
                            help="on Ctrl-C, how long a worker may take to finish the task "
                                 f"in hand before it is killed (default {STOP_TIMEOUT_SECONDS})")

    def handle(self, *args, **options) -> None:
        self._stop_timeout = options.get("stop_timeout", STOP_TIMEOUT_SECONDS)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        # Before the demo, which launches its own runs again when they miss images.
        self._resume()
        if not options["no_demo"]:
            call_command("seed_demo")
        children = self._start(options["host"], options["port"])
        url = f"http://{options['host']}:{options['port']}/"
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(self.style.SUCCESS(f"\nEvalHub is running at {url}"))
        self.stdout.write(f"  database: {database}, broker: {settings.CELERY_BROKER_URL}")
        if not options["no_demo"]:
            self.stdout.write("  demo logins (username / password):")
            for login in demo_logins():
                self.stdout.write(f"    {login.username} / {login.password}  ({login.role})")
        self.stdout.write("Press Ctrl-C to stop.\n")
        # Written to a file or a pipe (`make run > log`), stdout is block-buffered: the URL and
        # the logins would appear only when the command exits.
        self.stdout.flush()
        self._supervise(children)

    def _resume(self) -> None:
        # Only with the filesystem broker, whose only workers are the ones started below. With
        # another broker (CELERY_BROKER_URL set) other workers may hold these tasks right now,
        # and Redis hands a dead worker's task out again by itself.
        if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            return
        mark = _clean_stop_mark()
        stopped_cleanly = mark.exists()
        mark.unlink(missing_ok=True)  # this process's stop decides about the next start
        if stopped_cleanly:
            # Every unfinished run or job still has its messages in the broker's folder:
            # launching them again would queue each of its batches a second time.
            return
        for outcome in resume_work(unfinished_work()):
            self.stdout.write(outcome.line)

    def _start(self, host: str, port: int) -> dict[str, subprocess.Popen]:
        python = sys.executable
        children = {name: subprocess.Popen([
            python, "-m", "celery", "-A", "evalhub", "worker", "-Q", queue,
            "--hostname", f"{name}@%h", "--concurrency", "1", "--without-gossip",
            "--without-mingle", "--loglevel", "INFO",
        ]) for name, queue in WORKER_QUEUES.items()}
        children["web"] = subprocess.Popen([
            python, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG),
            "--bind", f"{host}:{port}",
            "--workers", "2", "--threads", "4", "--access-logfile", "-",
        ])
        return children

    def _supervise(self, children: dict[str, subprocess.Popen]) -> None:
        """Wait until a signal or a child's exit, then stop the children (module doc).

        Ctrl-C in a terminal reaches the children too (one process group): each worker then
        counts its own Ctrl-Cs as Celery does, and what is sent here (SIGTERM first: warm,
        repeated it changes nothing; SIGQUIT on the second: cold) agrees with them. A SIGTERM
        sent to this process alone (a service manager, `kill`) reaches only this process and
        is passed on."""
        stops = [0]  # stop requests: signals, and a child that exited by itself

        def on_signal(signum, frame) -> None:
            stops[0] += 1

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            exit_code = self._wait_for_stop(children, stops)
            warm = self._stop(children, lambda: stops[0])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if exit_code:
            os._exit(exit_code)
        if warm:
            _clean_stop_mark().touch()

    def _wait_for_stop(self, children: dict[str, subprocess.Popen], stops: list[int]) -> int:
        """0 once a stop is asked for; 1 when a child exited by itself (counted as the first
        stop request, so that one Ctrl-C then stops the others at once)."""
        while not stops[0]:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping.")
                    stops[0] += 1
                    return 1
            time.sleep(0.2)
        return 0

    def _stop(self, children: dict[str, subprocess.Popen], stops: Callable[[], int]) -> bool:
        """Stop the children (module doc); True when the workers stopped warm: each finished
        its task in hand, before any second stop request or kill."""
        timeout = self._stop_timeout
        self.stdout.write(
            f"Stopping: the workers finish the tasks in hand first (up to {timeout:g} s). "
            "Press Ctrl-C again to stop them now; what they leave unfinished is resumed at the "
            "next start.")
        self.stdout.flush()
        self._signal(children, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        cold = False
        while any(child.poll() is None for child in children.values()):
            if stops() >= 2 and not cold:
                cold = True
                self.stdout.write("Stopping now: the workers cancel their tasks (resumed at "
                                  "the next start). Ctrl-C once more kills them.")
                self.stdout.flush()
                self._signal(children, signal.SIGQUIT)  # Celery: cold; gunicorn: quick
                deadline = min(deadline, time.monotonic() + COLD_STOP_SECONDS)
            if stops() >= 3 or time.monotonic() >= deadline:
                for name, child in children.items():
                    if child.poll() is None:
                        child.kill()
                        child.wait()
                        self.stderr.write(f"{name} killed; its unfinished work is resumed at "
                                          "the next start.")
                return False
            time.sleep(0.1)
        # A worker killed by a signal (a kill from outside) exits below 0; Celery's own
        # shutdowns exit 0 (SIGTERM) or 1 (a Ctrl-C that reached it).
        return not cold and all(child.returncode >= 0 for name, child in children.items()
                                if name in WORKER_QUEUES)

    @staticmethod
    def _signal(children: dict[str, subprocess.Popen], sig: int) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(sig)


def _clean_stop_mark() -> Path:
    return Path(settings.VAR_DIR) / CLEAN_STOP_MARK
