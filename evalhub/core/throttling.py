"""DRF's scoped rate throttle, counted in one Redis round trip.

DRF's ``SimpleRateThrottle`` keeps each client's recent request times as a pickled list in the
cache: a ``GET`` of the list, then a ``SET`` of it with the new time. For the rating API
(``throttle_scope = "rating"``: every vote and lease) that was two cache round trips and a
pickle of up to a window's worth of times on every request, and two processes answering one
annotator at once could each read the list before the other wrote it (a request not counted).

With the Redis cache (``CACHE_URL``) :class:`ScopedRateThrottle` keeps the same sliding window
as a sorted set of request times, read and updated by one server-side script: requests older
than the window (time <= now - duration) are dropped, and the request is allowed, and its time
added, when fewer than ``num_requests`` remain, exactly DRF's rule. A refused request's
``Retry-After`` is DRF's ``wait()``: (duration - (now - oldest)) / (num_requests - held + 1)
seconds. Any other cache (local memory in the embedded default; Django's own Redis client,
which makes a client per call) gets DRF's own code.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import throttling

from evalhub.core.cache import RedisCacheClient

# KEYS[1]: the client's set; ARGV: now (s), duration (s), num_requests, a member name for this
# request. Returns {1} when allowed; {0, held, oldest time} when refused.
SLIDING_WINDOW = """
local now, duration, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
local held = redis.call('ZCARD', KEYS[1])
if held >= limit then
  return {0, held, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(duration))
return {1}
"""
# The sorted set's key, beside DRF's list (a different type under the same key would fail
# while processes of the code before this one still write lists).
KEY_SUFFIX = ":window"


class _OneRoundTrip(throttling.SimpleRateThrottle):
    def allow_request(self, request: Any, view: Any) -> bool:
        backend = getattr(self.cache, "_cache", None)
        if not isinstance(backend, RedisCacheClient) or self.rate is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        key = self.cache.make_and_validate_key(self.key + KEY_SUFFIX)
        self.now = self.timer()
        window = backend.script(key, SLIDING_WINDOW)
        answer = window(keys=[key], args=[repr(self.now), self.duration, self.num_requests,
                                          uuid.uuid4().hex])
        if answer[0] == 1:
            return True
        # What DRF's wait() reads: as many times as are held, the oldest last.
        self.history = [float(answer[2])] * int(answer[1])
        return self.throttle_failure()


class ScopedRateThrottle(throttling.ScopedRateThrottle, _OneRoundTrip):
    """DRF's ``ScopedRateThrottle`` (views naming a ``throttle_scope``; the rate of
    ``DEFAULT_THROTTLE_RATES[scope]`` per user, or per address for anonymous requests),
    counted by :class:`_OneRoundTrip`."""
