"""The Redis cache backend behaves as Django's, with one client object per connection pool."""

import threading

import pytest
import redis

from evalhub.core.cache import RedisCache
from tests.integration.fixtures import REDIS_URL


@pytest.fixture
def cache(redis_cache):
    return redis_cache


def test_it_answers_as_djangos_redis_cache(cache):
    assert isinstance(cache, RedisCache)
    assert cache.get("missing", "default") == "default"
    cache.set("key", {"a": [1, 2]}, 30)
    assert cache.get("key") == {"a": [1, 2]}
    assert cache.add("key", "other", 30) is False
    assert cache.add("fresh", 5, 30) is True
    assert cache.incr("fresh", 2) == 7
    assert cache.decr("fresh") == 6
    with pytest.raises(ValueError):
        cache.decr("never-set")
    cache.delete("key")
    assert cache.get("key") is None


def test_every_call_of_a_process_shares_one_client_per_pool(cache):
    clients = set()

    def work() -> None:
        for index in range(20):
            cache.set(f"k{index}", index, 30)
            assert cache.get(f"k{index}") == index
        clients.add(id(cache._cache.get_client(write=True)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 1
    assert cache._cache.get_client() is cache._cache.get_client(write=True)


def test_incr_and_decr_keep_the_keys_expiry_and_refuse_missing_keys(cache):
    cache.set("count", 10, 30)
    assert cache.decr("count", 3) == 7
    assert cache.incr("count") == 8
    raw = redis.Redis.from_url(REDIS_URL)
    assert 0 < raw.ttl(cache.make_and_validate_key("count")) <= 30
    cache.delete("count")
    with pytest.raises(ValueError):
        cache.incr("count")
    assert cache.get("count") is None  # a refused incr creates nothing


def test_incr_is_one_round_trip(cache, monkeypatch):
    cache.set("count", 1, 30)
    cache.incr("count", 0)  # the server learns the script once (SCRIPT LOAD) if it must
    client = cache._cache.get_client(write=True)
    sent = []
    original = client.execute_command
    monkeypatch.setattr(client, "execute_command",
                        lambda *args, **kwargs: sent.append(args[0]) or original(*args, **kwargs))
    assert cache.incr("count") == 2
    assert cache.incr("count") == 3
    assert sent == ["EVALSHA", "EVALSHA"]


def test_a_remembered_value_is_answered_without_a_round_trip_until_its_memo_runs_out(
        cache, monkeypatch):
    from evalhub.core import cache as module

    cache.set("ready", True, 30)
    assert module.remembered_get("ready", remember_s=10, cache=cache) is True
    raw = redis.Redis.from_url(REDIS_URL)
    raw.delete(cache.make_and_validate_key("ready"))  # another process's write
    assert module.remembered_get("ready", remember_s=10, cache=cache) is True
    clock = module.time.monotonic() + 11
    monkeypatch.setattr(module.time, "monotonic", lambda: clock)
    assert module.remembered_get("ready", remember_s=10, cache=cache) is None


def test_a_miss_is_not_remembered_and_this_process_writes_drop_the_memo(cache):
    from evalhub.core.cache import remembered_get

    assert remembered_get("later", remember_s=10, cache=cache) is None
    cache.set("later", 1, 30)
    assert remembered_get("later", remember_s=10, cache=cache) == 1
    cache.set("later", 2, 30)
    assert remembered_get("later", remember_s=10, cache=cache) == 2
    cache.delete("later")
    assert remembered_get("later", remember_s=10, cache=cache) is None
    cache.set("later", 3, 30)
    assert remembered_get("later", remember_s=10, cache=cache) == 3
    cache.clear()
    assert remembered_get("later", remember_s=10, cache=cache) is None


def test_a_remembered_add_claims_once_and_refuses_without_a_round_trip_meanwhile(
        cache, monkeypatch):
    from evalhub.core import cache as module

    assert module.remembered_add("claim", 1, 2, remember_s=1, cache=cache) is True
    assert module.remembered_add("claim", 1, 2, remember_s=1, cache=cache) is False
    raw = redis.Redis.from_url(REDIS_URL)
    raw.delete(cache.make_and_validate_key("claim"))  # the claim ran out elsewhere
    assert module.remembered_add("claim", 1, 2, remember_s=1, cache=cache) is False
    clock = module.time.monotonic() + 1.5
    monkeypatch.setattr(module.time, "monotonic", lambda: clock)
    assert module.remembered_add("claim", 1, 2, remember_s=1, cache=cache) is True


def test_another_process_claim_is_remembered_as_refused(cache):
    from evalhub.core.cache import remembered_add

    raw = redis.Redis.from_url(REDIS_URL)
    raw.set(cache.make_and_validate_key("claim"), 1, ex=30)  # claimed by another process
    assert remembered_add("claim", 1, 30, remember_s=1, cache=cache) is False
    raw.delete(cache.make_and_validate_key("claim"))
    assert remembered_add("claim", 1, 30, remember_s=1, cache=cache) is False


def test_without_a_cache_argument_the_default_redis_cache_remembers(cache):
    """As the services call the helpers: the default cache (``django.core.cache.cache`` is a
    proxy, not the RedisCache itself) still answers from the memo."""
    from evalhub.core.cache import remembered_add, remembered_get

    assert remembered_add("claim", 1, 30, remember_s=10) is True
    cache.set("ready", True, 30)
    assert remembered_get("ready", remember_s=10) is True
    raw = redis.Redis.from_url(REDIS_URL)
    raw.delete(cache.make_and_validate_key("claim"), cache.make_and_validate_key("ready"))
    assert remembered_add("claim", 1, 30, remember_s=10) is False
    assert remembered_get("ready", remember_s=10) is True


def test_with_the_local_memory_cache_the_helpers_are_get_and_add():
    from django.core.cache.backends.locmem import LocMemCache

    from evalhub.core.cache import remembered_add, remembered_get

    local = LocMemCache("memo-test", {})
    assert remembered_add("k", 1, 30, remember_s=10, cache=local) is True
    assert remembered_add("k", 1, 30, remember_s=10, cache=local) is False
    assert remembered_get("k", remember_s=10, cache=local) == 1
    local.delete("k")
    assert remembered_get("k", remember_s=10, cache=local) is None
