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
def api():
    """An API client; call ``api.force_authenticate(user)`` to act as someone."""
    return APIClient()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("EVALHUB_SKIP_INTEGRATION") == "1":
        skip = pytest.mark.skip(reason="EVALHUB_SKIP_INTEGRATION=1")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)
