"""validation.wakeup: the validator sleeps until results are stored, not on a clock."""

import os
import threading
import time

import pytest
from django.test import override_settings

from sparecycles.validation import wakeup

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture
def own_key(settings):
    settings.REDIS_URL = REDIS_URL
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "KEY_PREFIX": f"test-wakeup-{os.getpid()}"}}
    wakeup._client.cache_clear()
    wakeup._client().delete(wakeup._key())
    yield
    wakeup._client().delete(wakeup._key())
    wakeup._client.cache_clear()


@needs_redis
def test_a_wake_ends_the_wait_and_many_wakes_are_answered_by_one_pass(own_key):
    assert wakeup.validation_wait(0.1) is False  # nothing stored: it sleeps out its time
    for _ in range(5):
        wakeup.validation_wanted()
    assert wakeup._client().llen(wakeup._key()) == 1  # kept as one wake
    assert wakeup.validation_wait(5) is True
    assert wakeup.validation_wait(0.1) is False  # the five were answered together


@needs_redis
def test_a_sleeping_validator_wakes_when_results_are_stored(own_key):
    woke_after: list[float] = []
    started = time.monotonic()

    def validator():
        wakeup.validation_wait(10)
        woke_after.append(time.monotonic() - started)

    thread = threading.Thread(target=validator)
    thread.start()
    time.sleep(0.3)
    wakeup.validation_wanted()
    thread.join(10)
    assert woke_after and woke_after[0] < 5  # long before its 10-s sweep


def test_without_redis_waking_is_a_no_op():
    with override_settings(REDIS_URL=""):
        wakeup.validation_wanted()  # nothing to wake: the web process validates itself


def test_redis_away_loses_only_the_wake(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    wakeup._client.cache_clear()
    try:
        wakeup.validation_wanted()  # logged, not raised: the sweep finds the work
        with pytest.raises(Exception):  # noqa: B017 — redis-py's ConnectionError
            wakeup.validation_wait(0.1)
    finally:
        wakeup._client.cache_clear()
