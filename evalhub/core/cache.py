"""Django's Redis cache, with one client object per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache
operation. With redis-py 5 and later that constructor fills a case-insensitive table of some
170 response callbacks (``str.upper`` on every name): measured at 150-400 us of CPU per call,
several times the cost of the command's own round trip. The rating path makes several cache
calls per vote (throttle, cached session, the remaining count, the leaderboard claim), so this
was about a millisecond of the web process's CPU per vote.

A ``redis.Redis`` holds no connection of its own (it borrows one from its pool per command,
and the pool notices a fork), so one per pool serves every thread of a process.

``incr``/``decr`` are one round trip (a server-side script: ``INCRBY`` only if the key
exists) instead of Django's ``EXISTS`` then ``INCRBY``, which also could not tell a key that
expired in between from a live one and then left a key without expiry.

Facts a process may keep for a second or a few instead of asking Redis on every request
(:func:`remembered_get`, :func:`remembered_add`): a campaign's images are ready, a leaderboard
refresh is claimed. They were two of the vote's five Redis round trips (each about 0.1-0.2 ms
of the web process's CPU). The memo lives on the :class:`RedisCache` object, so
``cache.clear()`` forgets it too, and a ``set`` or ``delete`` of the key in this process drops
it; another process's write is seen once the memo runs out. With Django's local-memory cache
(no round trip to spare) the helpers are the cache's own ``get`` and ``add``.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

# Django's incr contract: the new value, or an error when the key does not exist.
INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._scripts: dict[tuple[int, str], Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            # Two threads may build one each at first: either is fine, both share the pool.
            client = self._clients[index] = self._client(connection_pool=self._pool(index))
        return client

    def script(self, key: Any, source: str) -> Any:
        """The Lua ``source`` registered once on the (write) client that serves ``key``;
        calling it runs EVALSHA, and sends the script only when the server lacks it."""
        client = self.get_client(key, write=True)
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[(id(client), source)] = client.register_script(source)
        return script

    def incr(self, key: Any, delta: int) -> int:
        value = self.script(key, INCR_IF_EXISTS)(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def _pool(self, index: int) -> Any:
        # Django's _get_connection_pool(write) draws the index itself (a random replica).
        if index not in self._pools:
            self._pools[index] = self._pool_class.from_url(self._servers[index],
                                                           **self._pool_options)
        return self._pools[index]


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with :class:`RedisCacheClient`, and a
    per-process memo of facts read from it (see the module doc)."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
        # key (as stored) -> (monotonic deadline, value): plain dict operations, atomic
        # under the GIL, so every thread of the process shares it without a lock.
        self._memo: dict[str, tuple[float, Any]] = {}

    def _memo_get(self, key: str) -> Any:
        entry = self._memo.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._memo.pop(key, None)
            return None
        return entry[1]

    def _memo_set(self, key: str, value: Any, seconds: float) -> None:
        self._memo[key] = (time.monotonic() + seconds, value)

    def remembered_get(self, key: Any, *, remember_s: float, version: Any = None) -> Any:
        made = self.make_and_validate_key(key, version=version)
        value = self._memo_get(made)
        if value is None:
            value = self._cache.get(made, None)
            if value is not None:
                self._memo_set(made, value, remember_s)
        return value

    def remembered_add(self, key: Any, value: Any, timeout: float | None, *, remember_s: float,
                       version: Any = None) -> bool:
        made = self.make_and_validate_key(key, version=version)
        if self._memo_get(made) is not None:
            return False
        added = self._cache.add(made, value, self.get_backend_timeout(timeout))
        # Added: the key lives ``timeout`` seconds from now. Refused: it lives, for a while
        # this process cannot know without another round trip; remembered ``remember_s``.
        lives = remember_s if timeout is None or not added else min(remember_s, timeout)
        self._memo_set(made, True, lives)
        return added

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Any = None) -> None:
        self._memo.pop(self.make_and_validate_key(key, version=version), None)
        super().set(key, value, timeout, version)

    def delete(self, key: Any, version: Any = None) -> bool:
        self._memo.pop(self.make_and_validate_key(key, version=version), None)
        return super().delete(key, version=version)

    def clear(self) -> None:
        self._memo.clear()
        super().clear()


def _default_cache() -> Any:
    """The default cache object itself: ``django.core.cache.cache`` is a proxy that forwards
    attribute reads, so ``isinstance`` on it never sees a :class:`RedisCache` (which left the
    memo unused on every caller that did not pass a cache)."""
    return caches[DEFAULT_CACHE_ALIAS]


def remembered_get(key: str, *, remember_s: float, cache: Any = None) -> Any:
    """``cache.get(key)`` (default cache), a value found kept in this process for
    ``remember_s`` seconds: a later call within that time asks nothing. A miss (None) is not
    remembered. Use it for facts that may be that much older than the shared cache's."""
    cache = cache or _default_cache()
    if isinstance(cache, RedisCache):
        return cache.remembered_get(key, remember_s=remember_s)
    return cache.get(key)


def remembered_add(key: str, value: Any, timeout: float | None, *, remember_s: float,
                   cache: Any = None) -> bool:
    """``cache.add(key, value, timeout)`` (default cache): True for the one caller that
    creates the key. Once this process knows the key exists (it added it, or an add was
    refused), it answers False without a round trip for ``remember_s`` seconds (at most
    ``timeout`` after its own add; up to ``remember_s`` past the key's expiry after a refusal,
    whose expiry it does not read)."""
    cache = cache or _default_cache()
    if isinstance(cache, RedisCache):
        return cache.remembered_add(key, value, timeout, remember_s=remember_s)
    return cache.add(key, value, timeout)
