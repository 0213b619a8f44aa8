"""The rating throttle with the Redis cache: DRF's sliding window, decided in one round trip.

The same sequence of requests gets the same answers and the same ``Retry-After`` as DRF's own
ScopedRateThrottle; concurrent requests of one annotator are each counted."""

import threading
from types import SimpleNamespace

from rest_framework import throttling

from evalhub.core.throttling import ScopedRateThrottle

VIEW = SimpleNamespace(throttle_scope="rating")
RATE = {"rating": "3/min"}




def _request(user_id: int) -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user_id), META={})


def _throttle(cls, cache, now: float):
    throttle = cls()
    throttle.cache, throttle.THROTTLE_RATES, throttle.timer = cache, RATE, lambda: now
    return throttle


def _answers(cls, cache, user_id: int, times: list[float]) -> list[tuple[bool, float | None]]:
    """(allowed, wait) of one request at each time, by a fresh throttle as DRF makes one."""
    answers = []
    for now in times:
        throttle = _throttle(cls, cache, now)
        allowed = throttle.allow_request(_request(user_id), VIEW)
        answers.append((allowed, None if allowed else round(throttle.wait(), 6)))
    return answers


def test_it_answers_every_request_as_drfs_throttle_does(redis_cache):
    t0 = 1_000_000.0
    times = [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 30, t0 + 59.999, t0 + 60, t0 + 60.5, t0 + 61.5,
             t0 + 62, t0 + 62.1, t0 + 200]
    ours = _answers(ScopedRateThrottle, redis_cache, 1, times)
    drfs = _answers(throttling.ScopedRateThrottle, redis_cache, 2, times)
    assert ours == drfs
    # Three in a minute, the fourth refused until the first leaves the window.
    assert [allowed for allowed, _ in ours] == [True, True, True, False, False, False, True,
                                                False, True, True, False, True]
    assert ours[3] == (False, 57.0)  # (60 - (3 - 0)) / (3 - 3 + 1) seconds


def test_annotators_are_counted_apart(redis_cache):
    now = 2_000_000.0
    assert all(allowed for allowed, _ in _answers(ScopedRateThrottle, redis_cache, 7, [now] * 3))
    assert _answers(ScopedRateThrottle, redis_cache, 7, [now])[0][0] is False
    assert _answers(ScopedRateThrottle, redis_cache, 8, [now])[0][0] is True


def test_concurrent_requests_of_one_annotator_are_each_counted(redis_cache):
    now, allowed = 3_000_000.0, []

    def ask() -> None:
        allowed.append(_throttle(ScopedRateThrottle, redis_cache, now).allow_request(
            _request(9), VIEW))

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed) == [False] * 9 + [True] * 3


def test_a_view_without_a_scope_and_an_unset_rate_are_not_throttled(redis_cache):
    throttle = _throttle(ScopedRateThrottle, redis_cache, 0.0)
    assert all(throttle.allow_request(_request(1), SimpleNamespace()) for _ in range(10))
    throttle.THROTTLE_RATES = {"rating": None}
    assert all(throttle.allow_request(_request(1), VIEW) for _ in range(10))
