"""Fixtures shared by the whole suite.

Integration fixtures start real processes: a Celery worker subscribed to the test database and
a Redis broker. ``make test`` provides PostgreSQL and Redis (see .ci/run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from evalhub.projects.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

REPO_ROOT = Path(__file__).resolve().parent.parent

# OpenMP threads that wait for work sleep instead of spinning. torch's libgomp spins by default,
# which costs nothing on an idle machine but here never is one: two test processes, their live
# servers, Chromium, PostgreSQL and worker processes share two cores, and a torch op whose second
# thread spins burns the core another process needed (measured on a loaded 2-core machine, four
# tiny diffusers images: 4-6 s of CPU and 19-25 s wall with spinning, 0.3 s and 1-3.5 s
# passive). Thread counts, and so every code path, stay as they are. libgomp reads this when
# torch loads it, which is after this file (nothing imported above imports torch); worker and
# server processes inherit it through the environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS (numpy, scipy) spins likewise: its threads poll for 2**28 cycles (~0.1 s) after each
# call before they sleep; 2**4 lets them sleep at once (measured: 256x256 products and solves
# between short sleeps, loaded 2-core machine, 2.0-2.4 s of CPU instead of 10-11). OpenBLAS
# reads this when numpy loads, which in a test process is before this file (pytest-django's
# django.setup() imports it): scripts/test.sh exports it for the test processes, this line
# hands it to the processes they start in a plain ``pytest`` run.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Real worker processes and their broker, shared by integration and browser tests.
pytest_plugins = ["tests.integration.fixtures"]

# The test run hashes passwords with MD5, which Django's docs recommend for tests: factories create
# hundreds of users, and PBKDF2's 1,000,000 iterations (~0.3 s of CPU each) were about 80% of
# the unit-test time. Production settings keep PBKDF2. The live server of the browser tests runs
# in this process, so users made here log in there; worker processes never check a password.
# PBKDF2 stays second, so a hash made with the production hasher still verifies.
TEST_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


def pytest_configure(config: pytest.Config) -> None:
    # override_settings sends setting_changed, which resets Django's cached hasher list.
    override_settings(PASSWORD_HASHERS=TEST_PASSWORD_HASHERS).enable()
    _flush_by_delete()


# Made by migrate's post_migrate signal, the same rows every time (_flush_by_delete).
KEPT_BY_FLUSH = frozenset({"django_content_type", "auth_permission"})


def _flush_by_delete() -> None:
    """Empty PostgreSQL's tables after a transactional test with DELETE, not TRUNCATE.

    Django's flush, run after every ``transaction=True`` test (the browser and integration
    tests, about 500 here), truncates all 49 tables in one statement: PostgreSQL gives each a
    new file, 0.3-0.45 s per flush on this project's machine, against 0.02 s to DELETE the few
    rows a test leaves. The foreign keys Django creates are DEFERRABLE INITIALLY DEFERRED and
    the flush runs in one transaction, so the order of the DELETEs does not matter (deferred
    again explicitly, for any constraint made otherwise). Sequences are not reset by either
    (``reset_sequences=False``, the default); a flush that asks for it, or for CASCADE, keeps
    Django's TRUNCATE. Production code never flushes.

    The content types and permissions stay: the flush's post_migrate signal would only make
    the same rows again (0.14 s of the 0.35 s left per flush when they were deleted too); no
    test writes either table.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences,
                            allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED;"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
            for table in tables if table not in KEPT_BY_FLUSH]

    DatabaseOperations.sql_flush = sql_flush


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Every test writes files into its own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": settings.MEDIA_ROOT},
        },
    }


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The local-memory cache outlives a test; ids are reused across tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def project(db):
    return ProjectFactory()


def _member(project, role):
    return MembershipFactory(project=project, role=role).user


@pytest.fixture
def owner(project):
    return _member(project, Role.OWNER)


@pytest.fixture
def scientist(project):
    return _member(project, Role.SCIENTIST)


@pytest.fixture
def annotator(project):
    return _member(project, Role.ANNOTATOR)


@pytest.fixture
def outsider(db):
    return UserFactory()


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent by name (core.queueing.enqueue_on_commit) as (name, args), recorded instead
    of reaching the broker (tests/leaderboards' ``sent_with_countdown`` keeps the countdown)."""
    from evalhub.config.celery import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **options:
                        sent.append((name, list(args or []))))
    return sent


@pytest.fixture
def api():
    """An API client; call ``api.force_authenticate(user)`` to act as someone."""
    return APIClient()


# The files that took longest, longest first (seconds of one process in a whole `make test`
# run on this project's 2-core machine, 2026-12-06, beside a CPU benchmark (load 5-8); only
# their order matters here): each starts servers or worker processes, or runs CPU models.
# Files outside LONG_FILE_FOLDERS would otherwise come among the short ones, by test count.
LONGEST_FILES = (
    "config/test_readme_commands.py",  # 79: migrate, the demo and each README command
    "integration/test_metric_workers.py",  # 71
    "integration/test_embedded_default.py",  # 57: the demo generated by a real worker
    "integration/test_embedded_recovery.py",  # 42: run_embedded resuming with a real worker
    "metrics/test_inception.py",  # 45
    "evaluation/test_video_metric_jobs.py",  # 43
    "integration/test_generation_workers.py",  # 36
    "api/test_schema_fuzzing.py",  # 34: one test, schemathesis against a live server
    "campaigns/test_late_votes_and_undo.py",  # 29
    "leaderboards/test_best_of_k_quality.py",  # 27
    "metrics/test_i3d_fvd.py",  # 25
    "core/test_security_headers.py",  # 24
    "metrics/test_clip_lpips.py",  # 23
)
# Other folders whose files are long: they drive Chromium or start worker processes (tens of
# seconds per test, against under a second for most unit tests).
LONG_FILE_FOLDERS = ("browser", "integration")
TESTS = REPO_ROOT / "tests"


def _file_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """Whole files, longest first: LONGEST_FILES, then the other files of LONG_FILE_FOLDERS,
    then the rest, the last two groups each with the files of more tests first (as
    pytest-xdist orders files by itself); each file's tests stay in their own order.

    ``make test`` hands whole files to its two processes (``--dist loadfile
    --no-loadscope-reorder``), each taking the next file in this order when it runs low. In
    pytest-xdist's own order (most tests first) the one-test files come last, among them the
    longest of all: one handed out last kept one process busy minutes after the other had run
    out of work. Handed out first, long files are spread over both processes and the many short
    unit tests even out the end (longest-processing-time-first scheduling). A stale list costs
    balance, never a test."""
    by_file: dict[Path, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.path, []).append(item)
    longest = {TESTS / name: index for index, name in enumerate(LONGEST_FILES)}

    def rank(path: Path) -> tuple[int, int, int]:
        if path in longest:
            return 0, longest[path], 0
        long_folder = (path.is_relative_to(TESTS)
                       and path.relative_to(TESTS).parts[0] in LONG_FILE_FOLDERS)
        return (1 if long_folder else 2), 0, -len(by_file[path])

    return [item for path in sorted(by_file, key=rank) for item in by_file[path]]


def pytest_collection_modifyitems(config, items):
    items[:] = _file_order(items)
    if os.environ.get("EVALHUB_SKIP_INTEGRATION") == "1":
        skip = pytest.mark.skip(reason="EVALHUB_SKIP_INTEGRATION=1")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def broker(monkeypatch):
    """Point the Celery app at a broker URL for one test (the suite's Redis by default), then
    restore it: ``broker("redis://127.0.0.1:<closed port>/0")`` is a broker that is down.

    Celery reads ``CELERY_BROKER_URL`` from the environment before its configuration; its
    connection and producer pools, made from the URL of their first use, are dropped on every
    change (what Celery itself does after a fork, ``Celery._after_fork``).
    """
    from evalhub import celery_app
    from tests.integration.fixtures import REDIS_URL

    saved = celery_app.conf.broker_transport_options

    def forget_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    def use(url: str, **transport_options: object) -> None:
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        celery_app.conf.broker_transport_options = transport_options
        forget_pools()

    use(REDIS_URL)
    yield use
    celery_app.conf.broker_transport_options = saved
    forget_pools()
