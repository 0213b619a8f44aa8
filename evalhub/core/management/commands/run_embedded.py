"""Run EvalHub on the embedded default: web server and a real Celery worker, one command."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from evalhub.core.demo import demo_logins

GUNICORN_CONFIG = Path(__file__).resolve().parents[3] / "config" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = "Migrate, seed the demo, then run gunicorn and a Celery worker until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000,
                            help="port to listen on (default 8000)")
        parser.add_argument("--no-demo", action="store_true",
                            help="do not seed the demo project and its users")

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
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

    def _start(self, host: str, port: int) -> dict[str, subprocess.Popen]:
        python = sys.executable
        worker = subprocess.Popen([
            python, "-m", "celery", "-A", "evalhub", "worker", "-Q", "default,gpu",
            "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ])
        web = subprocess.Popen([
            python, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG),
            "--bind", f"{host}:{port}",
            "--workers", "2", "--threads", "4", "--access-logfile", "-",
        ])
        return {"worker": worker, "web": web}

    def _supervise(self, children: dict[str, subprocess.Popen]) -> None:
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping.")
                    exit_code, stopping = 1, True
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if exit_code:
            os._exit(exit_code)
