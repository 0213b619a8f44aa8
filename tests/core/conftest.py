"""Fixtures of the core tests."""

import uuid

import pytest
import redis
from django.core.cache import caches
from django.test import override_settings

from tests.integration.fixtures import REDIS_URL


@pytest.fixture
def redis_cache():
    """The default cache on the real Redis (evalhub.core.cache.RedisCache), under a key prefix
    of its own, cleared afterwards."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"These tests need Redis at {REDIS_URL} ({exc}).")
    config = {"default": {"BACKEND": "evalhub.core.cache.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    with override_settings(CACHES=config):
        yield caches["default"]
        caches["default"].clear()
