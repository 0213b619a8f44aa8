"""Integration tests: PostgreSQL, a Redis broker and real worker processes (the fixtures that
start them: tests/integration/fixtures.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, shared_media_root):
    """Integration tests share one media folder with the worker process."""
    settings.MEDIA_ROOT = str(shared_media_root)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(shared_media_root)},
        },
    }


@pytest.fixture(autouse=True)
def _leaderboard_refresh_due_soon(settings):
    """A vote's leaderboard refresh is due a second later, not 30 (the debounce, checked in
    tests/leaderboards): the worker's release at the end of a test waits until every queued
    task, a debounced refresh too, has run."""
    settings.EVALHUB_LEADERBOARD_REFRESH_SECONDS = 1
