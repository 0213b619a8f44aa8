"""A worker starts without Django's system checks (Celery's Django fix-up would run them: every
URLconf, view and API module imported, 0.65 s of a 1.9 s start, bench/worker_start.py); the
checks themselves pass, here, as `manage.py check` runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from django.core.management import call_command

from tests.integration.workers import REPO_ROOT

READ_FLAG = ("import os, evalhub; "
             "print(repr(os.environ['CELERY_SKIP_CHECKS']))")


def _flag(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "CELERY_SKIP_CHECKS"}
    out = subprocess.run([sys.executable, "-c", READ_FLAG], cwd=REPO_ROOT, env=base | env,
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


def test_the_celery_app_skips_djangos_checks_at_worker_start_unless_told_otherwise():
    assert _flag() == "'1'"
    assert _flag(CELERY_SKIP_CHECKS="") == "''"  # empty: Celery runs them


def test_djangos_system_checks_pass():
    call_command("check", fail_level="WARNING")
