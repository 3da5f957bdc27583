"""Warm sandboxes: reused for the same code, never shared between codes, capped."""

import pytest

from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import pairs_judge
from sparecycles.sandbox.pool import pool

# Tries to influence every other validator in its interpreter: STRICT would answer True
# to everything if the two shared one.
MEDDLER = '''
import builtins
builtins.MEDDLED = True
def equivalent(a, b):
    return True
'''
STRICT = ("import builtins\ndef equivalent(a, b):\n"
          "    return getattr(builtins, 'MEDDLED', False) or a == b\n")


def test_one_code_one_process_reused_warm():
    assert pairs_judge(code=STRICT, pairs=[(1, 1), (1, 2)]) == [True, False]
    assert pairs_judge(code=MEDDLER, pairs=[(1, 2)]) == [True]
    for _ in range(20):
        assert pairs_judge(code=STRICT, pairs=[(1, 2), (3, 3), ("x", "y")]) == [False, True, False]
    assert pool.started == 2  # one per code, then reused


def test_the_pool_keeps_at_most_pool_size_idle_processes(settings):
    settings.SANDBOX = {**settings.SANDBOX, "POOL_SIZE": 1}
    pairs_judge(code=STRICT, pairs=[(1, 1)])
    pairs_judge(code=MEDDLER, pairs=[(1, 1)])
    assert pool.idle_count() == 1
    pairs_judge(code=STRICT, pairs=[(1, 1)])  # evicted: started again
    assert pool.started == 3 and pool.idle_count() == 1


def test_a_failed_validator_fails_fast_until_retry_s():
    looping = "def equivalent(a, b):\n    while a:\n        pass\n    return True\n"
    with pytest.raises(ValidatorError, match="timed out after 2 s"):
        pairs_judge(code=looping, pairs=[(1, 1)])
    with pytest.raises(ValidatorError, match="timed out after 2 s"):
        pairs_judge(code=looping, pairs=[(0, 0)])  # would pass, but the breaker is open
    assert pool.started == 1
    assert pool.idle_count() == 0  # the looping process was killed
