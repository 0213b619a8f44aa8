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
"""

from __future__ import annotations

from typing import Any

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
    """``django.core.cache.backends.redis.RedisCache`` with :class:`RedisCacheClient`."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
