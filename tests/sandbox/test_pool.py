"""Warm sandboxes: reused for the same code, never shared between codes, capped."""

import pytest
from django.core.management import call_command

from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_create,
    app_version_create,
    batch_create,
)
from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import pairs_judge
from sparecycles.sandbox.pool import pool
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import DeviceCredibility
from sparecycles.volunteers.services import device_connect

ECHO = b"def main(input):\n    return {'n': input['n']}\n"

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
    pairs_judge(code=STRICT, pairs=[(2, 2)])  # evicted: started again (a new pair: (1, 1)
                                              # is remembered and needs no process)
    assert pool.started == 3 and pool.idle_count() == 1


def test_a_failed_validator_fails_fast_until_retry_s():
    looping = "def equivalent(a, b):\n    while a:\n        pass\n    return True\n"
    with pytest.raises(ValidatorError, match="timed out after 2 s"):
        pairs_judge(code=looping, pairs=[(1, 1)])
    with pytest.raises(ValidatorError, match="timed out after 2 s"):
        pairs_judge(code=looping, pairs=[(0, 0)])  # would pass, but the breaker is open
    assert pool.started == 1
    assert pool.idle_count() == 0  # the looping process was killed


# Found by the red team (tests/redteam/README.md, issue 14): the pool and its breaker were
# keyed by sha256(code) only, so owner A, with a copy of owner B's validator (public for a
# catalogue app, or guessed: it is ordinary code) and outputs that make it fail from A's
# own app and devices, paused B's work units for RETRY_S after every trip and killed the
# warm process B was using. Now (app id, code) is the key.

# Honest, but its time grows with the numbers it is given: a hostile volunteer of A's app
# sends a huge one and the comparison times out (a process-level failure: breaker).
COUNTS = """
def equivalent(a, b):
    if not (isinstance(a, dict) and isinstance(b, dict) and "n" in a and "n" in b):
        return a == b
    return a["n"] == b["n"] and sum(range(a["n"])) == sum(range(b["n"]))
"""


@pytest.mark.django_db(transaction=True)
def test_owner_a_can_not_pause_owner_bs_validator_by_copying_its_code(project, other_project):
    b_app = app_create(project=other_project, name="b", title="b", validator="custom",
                       validate_code=COUNTS)
    a_app = app_create(project=project, name="a", title="a", validator="custom",
                       validate_code=COUNTS)
    quorum = QuorumParams(min_quorum=2, target_nresults=2)
    a_batch = batch_create(app_version=app_version_create(app=a_app, code=ECHO), name="a",
                           inputs=[{"n": 1}], quorum=quorum)
    b_batch = batch_create(app_version=app_version_create(app=b_app, code=ECHO), name="b",
                           inputs=[{"n": 2}], quorum=quorum)
    outputs = {a_batch.pk: {"n": 10**12}, b_batch.pk: {"n": 2}}
    for _ in range(6):   # dispatch is random: each device answers whichever it got
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        DeviceCredibility.objects.create(device=device, confirmed=20)  # established
        for replica in tasks_dispatch(device=device, slots=1).replicas:
            results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                                  output=outputs[replica.workunit.batch_id])])
    assert Replica.objects.filter(pending=True).count() == 4

    call_command("validator", "--once")   # A's work unit comes first (lower id)

    a_unit, b_unit = a_batch.workunits.get(), b_batch.workunits.get()
    assert a_unit.error_reason.startswith("Validation paused: ")   # A's breaker tripped
    assert "timed out" in a_unit.error_reason
    assert b_unit.state == WorkUnit.State.COMPLETED, b_unit.error_reason
    with pytest.raises(ValidatorError, match="timed out"):   # A's stays open...
        pairs_judge(code=COUNTS, pairs=[({"n": 1}, {"n": 1})], app_id=a_app.pk)
    assert pairs_judge(code=COUNTS, pairs=[({"n": 3}, {"n": 3})], app_id=b_app.pk) == [True]


# Red team notes (issue 14): the cap was on idle processes only; any number of threads
# could each start their own.
def test_at_most_max_processes_run_at_once_across_threads(settings):
    import threading

    from sparecycles.sandbox.errors import SandboxBusy

    settings.SANDBOX = {**settings.SANDBOX, "MAX_PROCESSES": 1, "POOL_SIZE": 4}
    done = {}

    def other_owner(name, code):
        try:
            done[name] = pairs_judge(code=code, pairs=[(1, 1)], app_id=2)
        except ValidatorError as exc:
            done[name] = exc

    with pool.lend(STRICT, app_id=1):
        waiting = threading.Thread(target=other_owner, args=("waited", MEDDLER))
        waiting.start()
        waiting.join(timeout=3)
        assert waiting.is_alive() and pool.started == 1   # it waits: no second process
    waiting.join()
    assert done["waited"] == [True] and pool.started == 2 and pool.running_count() == 1

    with pool.lend(MEDDLER, app_id=2):
        settings.SANDBOX = {**settings.SANDBOX, "START_TIMEOUT_S": 0.5}   # waits 0.5 s
        busy = threading.Thread(target=other_owner, args=("busy", STRICT))
        busy.start()
        busy.join()
    assert isinstance(done["busy"], SandboxBusy)
    settings.SANDBOX = {**settings.SANDBOX, "START_TIMEOUT_S": 60}
    # Busy is nobody's fault: no breaker for STRICT.
    assert pairs_judge(code=STRICT, pairs=[(1, 2)], app_id=2) == [False]
    assert pool.running_count() == 1


SLEEPY = "import time\ndef equivalent(a, b):\n    time.sleep(0.5)\n    return a == b\n"


def test_a_budget_stops_between_pairs_and_the_next_call_resumes():
    from sparecycles.sandbox.errors import BudgetSpent

    pairs = [(i, i) for i in range(4)] + [(1, 2)]
    calls = 0
    while True:
        calls += 1
        try:
            verdicts = pairs_judge(code=SLEEPY, pairs=pairs, app_id=1, budget_s=0.8)
            break
        except BudgetSpent as exc:
            assert "judged this pass" in exc.reason
            assert calls < len(pairs)   # each call judges at least one new pair
    assert verdicts == [True, True, True, True, False]
    assert calls >= 2 and pool.started == 1   # no breaker, the process stayed warm
    assert pairs_judge(code=SLEEPY, pairs=pairs, app_id=1, budget_s=0) == verdicts  # memo
