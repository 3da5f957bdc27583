"""Broken and hostile validators inside a real validation run, on the real database.

Results are stored the way the volunteer socket stores them (pending), then
`manage.py validator --once` validates everything pending in one pass: work units
of honest apps complete while a broken validator's work units wait with the reason
for the owner, their honest results never marked invalid.
"""

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sparecycles.gateway.protocol import FrameError, parse_client_frame
from sparecycles.projects.models import App, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_create,
    app_update,
    app_version_create,
    batch_create,
    project_owner_add,
)
from sparecycles.sandbox.pool import pool
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.selectors import batch_status
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import DeviceCredibility
from sparecycles.validation.sweeps import workunits_unstick
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db(transaction=True)

ECHO = b"def main(input):\n    return {'n': input['n']}\n"
# Passes the check on save (trivial pairs), then loops on real results.
LOOPS_ON_RESULTS = ("def equivalent(a, b):\n    if not a:\n        return a == b\n"
                    "    while True:\n        pass\n")
DIES_ON_RESULTS = ("import os\ndef equivalent(a, b):\n    if not a:\n        return a == b\n"
                   "    os._exit(7)\n")
HOARDS_ON_RESULTS = ("def equivalent(a, b):\n    if not a:\n        return a == b\n"
                     "    hoard = []\n    while True:\n        hoard.append(bytearray(10**8))\n")
FIXED = "def equivalent(a, b):\n    return a == b\n"


def app_with(project, name, **validator):
    app = app_create(project=project, name=name, title=name, **validator)
    version = app_version_create(app=app, code=ECHO)
    batch = batch_create(app_version=version, name=f"{name} batch",
                         inputs=[{"n": i} for i in range(2)],
                         quorum=QuorumParams(min_quorum=2, target_nresults=2))
    return app, batch


def report_all_pending(output=lambda unit: {"n": unit.input["n"]}):
    """Honest volunteers return every task; results are stored, not yet validated."""
    for _ in range(50):
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        # Established (as if spot checks had confirmed it): validation lets it settle.
        DeviceCredibility.objects.create(device=device, confirmed=20)
        replicas = tasks_dispatch(device=device, slots=4).replicas
        if not replicas:
            return
        results_store([Report(device_id=device.pk, task_id=r.task_id, ok=True,
                              output=output(r.workunit)) for r in replicas])


def test_broken_validators_pause_their_work_units_while_others_validate(project, settings):
    settings.SANDBOX = {**settings.SANDBOX, "MEMORY_MB": 400}
    _, honest = app_with(project, "honest")
    _, loops = app_with(project, "loops", validator="custom", validate_code=LOOPS_ON_RESULTS)
    _, dies = app_with(project, "dies", validator="custom", validate_code=DIES_ON_RESULTS)
    _, hoards = app_with(project, "hoards", validator="custom", validate_code=HOARDS_ON_RESULTS)
    report_all_pending()
    assert Replica.objects.filter(pending=True).count() == 16

    call_command("validator", "--once")  # one pass over all 8 work units

    assert not Replica.objects.filter(pending=True).exists()
    assert set(honest.workunits.values_list("state", flat=True)) == {WorkUnit.State.COMPLETED}
    expected = {
        loops: "Validation paused: The custom validator timed out after 2 s on one comparison.",
        dies: "Validation paused: The custom validator's sandbox exited unexpectedly (status ",
        # Killed at a limit: memory, or the clock if the machine is slow to fill it.
        hoards: "Validation paused: The custom validator",
    }
    for batch, reason in expected.items():
        for unit in batch.workunits.all():
            assert unit.state == WorkUnit.State.OPEN
            assert unit.error_reason.startswith(reason)
            assert batch is not hoards or ("memory" in unit.error_reason
                                           or "timed out" in unit.error_reason)
            # Nobody's result was judged: no invalid verdict, no new replicas.
            assert [r.validate_state for r in unit.replicas.all()] == ["init", "init"]
        [shown] = batch_status(batch=batch)["failure_reasons"]  # the batch page, API, CLI
        assert shown["reason"].startswith(reason) and shown["count"] == 2


def test_a_fixed_validator_resumes_the_paused_work_units(project):
    app, batch = app_with(project, "loops", validator="custom", validate_code=LOOPS_ON_RESULTS)
    report_all_pending()
    call_command("validator", "--once")
    assert set(batch.workunits.values_list("state", flat=True)) == {WorkUnit.State.OPEN}

    app_update(app=app, validate_code=FIXED)  # checked in the sandbox, then saved
    workunits_unstick()  # housekeeping retries open work units with no replica out

    units = list(batch.workunits.all())
    assert {u.state for u in units} == {WorkUnit.State.COMPLETED}
    assert {u.error_reason for u in units} == {""}
    assert set(Replica.objects.filter(workunit__batch=batch)
               .values_list("validate_state", flat=True)) == {"valid"}


STEAL_AND_PROMOTE = '''
def equivalent(a, b):
    try:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        get_user_model().objects.filter(username="owner").update(is_superuser=True,
                                                                 is_staff=True)
        open(LEAK, "w").write(settings.SECRET_KEY)
    except Exception:
        pass
    return a == b
'''


def test_an_owner_can_not_become_superuser_through_a_custom_validator(project, tmp_path):
    """The attack of issue 14: a non-superuser owner creates an app with a custom validator
    through the API; when a result arrives its code reads SECRET_KEY and promotes its owner."""
    owner = project.owners.get()
    project_owner_add(project=project, user=owner)
    assert not owner.is_superuser
    leak = tmp_path / "secret_key.txt"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")

    # Written bluntly, it can't even be saved: the check runs it in the sandbox.
    blunt = STEAL_AND_PROMOTE.replace("    try:\n", "    if True:\n").replace(
        "    except Exception:\n        pass\n", "")
    response = api.post("/api/v1/apps/", {
        "project": project.slug, "name": "blunt", "title": "Blunt", "validator": "custom",
        "validate_code": f"LEAK = {str(leak)!r}\n" + blunt}, format="json")
    assert response.status_code == 400
    assert "ModuleNotFoundError" in response.json()["detail"]

    response = api.post("/api/v1/apps/", {
        "project": project.slug, "name": "steal", "title": "Steal", "validator": "custom",
        "validate_code": f"LEAK = {str(leak)!r}\n" + STEAL_AND_PROMOTE}, format="json")
    assert response.status_code == 201, response.content
    app = App.objects.get(name="steal")
    version = app_version_create(app=app, code=ECHO)
    batch = batch_create(app_version=version, name="steal", inputs=[{"n": 1}],
                         quorum=QuorumParams(min_quorum=2, target_nresults=2))
    report_all_pending()
    call_command("validator", "--once")

    assert batch.workunits.get().state == WorkUnit.State.COMPLETED  # the validator ran
    owner = get_user_model().objects.get(pk=owner.pk)
    assert not owner.is_superuser
    assert not leak.exists()


# Found by the red team (tests/redteam/README.md, issue 14): a volunteer's deep output and
# a slow validator each held up other owners' validation.

# An honest owner's validator, written the way the platform's own tolerance comparator is:
# it walks lists and dicts recursively.
RECURSIVE_HONEST = '''
def _same(a, b):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b

def equivalent(a, b):
    return _same(a, b)
'''


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_volunteers_deep_output_can_not_pause_an_honest_apps_validation(project):
    """A hostile VOLUNTEER (not the owner) sends a 600-deep output. The gateway accepts it
    (it parses up to Python's recursion limit); in the sandbox the honest validator's
    RecursionError is a "limit", i.e. a ValidatorError: the work unit is paused, nobody's
    result is judged, and the breaker pauses every other work unit of the app for RETRY_S.
    Housekeeping retries the poisoned unit and trips the breaker again, for ever."""
    poison = nested(600)
    frame = json.dumps({"type": "result", "task_id": "t" * 20, "status": "ok",
                        "output": poison, "elapsed_ms": 1})
    with pytest.raises(FrameError, match="nested deeper than 64"):
        parse_client_frame(frame)   # the gateway refuses it; stored anyway below, as if
                                    # it had come in before the limit existed

    app = app_create(project=project, name="honest", title="honest", validator="custom",
                     validate_code=RECURSIVE_HONEST)        # passes the save check
    version = app_version_create(app=app, code=ECHO)
    quorum = QuorumParams(min_quorum=2, target_nresults=2)
    # Two devices of the cheater (devices are free) take both replicas of one work unit...
    poisoned_batch = batch_create(app_version=version, name="p", inputs=[{"n": 1}],
                                  quorum=quorum)
    poisoned = []
    for _ in range(2):
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        [replica] = tasks_dispatch(device=device, slots=1).replicas
        results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                              output=poison)])
        poisoned.append(replica.task_id)
    # ...and honest volunteers complete another work unit of the same app.
    batch = batch_create(app_version=version, name="b", inputs=[{"n": 2}], quorum=quorum)
    for _ in range(2):
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        DeviceCredibility.objects.create(device=device, confirmed=20)  # established
        [replica] = tasks_dispatch(device=device, slots=1).replicas
        results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                              output={"n": 2})])

    call_command("validator", "--once")

    units = WorkUnit.objects.filter(batch__in=[poisoned_batch, batch])
    reasons = {w.input["n"]: (w.state, w.error_reason) for w in units}
    print("\nwork units after one validator pass:", reasons)
    # Secure behaviour: the deep output is simply not equivalent (invalid), and the work
    # unit without it completes.
    assert all(not reason.startswith("Validation paused") for _, reason in reasons.values())
    assert batch.workunits.get().state == WorkUnit.State.COMPLETED


SLOW = '''
import time
def equivalent(a, b):
    if a and b:
        time.sleep(1.8)   # under PAIR_TIMEOUT_S (2 s) every time: never a time-out
    return a["n"] == b["n"] if a and b else a == b
'''


def test_a_slow_validator_can_not_hold_other_owners_validation(project, other_project,
                                                               settings):
    """Owner A's validator takes 1.8 s per comparison, always under the 2 s limit, so it
    never times out and never trips the breaker. The transitioner judged all ordered pairs
    of an open work unit (n results: n(n-1) pairs, min_quorum up to MAX_REPLICAS=1000) with
    the work-unit rows locked, inside the one transaction that also validated owner B's work
    units: with 4 results (12 pairs) B's honest work unit waited ~22 s. Now A's judging has
    a budget per work unit and per app and pass, outside any lock and after B's work."""
    settings.SANDBOX = {**settings.SANDBOX, "WORKUNIT_BUDGET_S": 1, "APP_BUDGET_S": 1}
    owner_a = project.owners.get()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner_a).key}")
    started = time.monotonic()
    response = api.post("/api/v1/apps/", {"project": project.slug, "name": "slow",
                                          "title": "Slow", "validator": "custom",
                                          "validate_code": SLOW}, format="json")
    print(f"\nPOST /api/v1/apps/ with a new custom validator took "
          f"{time.monotonic() - started:.1f} s in the request (a cold sandbox start)")
    assert response.status_code == 201, response.content
    slow = App.objects.get(name="slow")
    slow_version = app_version_create(app=slow, code=ECHO)
    batch_create(app_version=slow_version, name="slow", inputs=[{"n": 1}],
                 quorum=QuorumParams(min_quorum=4, target_nresults=4, max_total_results=6,
                                     max_success_results=4))
    honest = App.objects.create(project=other_project, name="honest", title="honest")
    honest_batch = batch_create(app_version=app_version_create(app=honest, code=ECHO),
                                name="honest", inputs=[{"n": 7}],
                                quorum=QuorumParams(min_quorum=1, target_nresults=1))
    for _ in range(6):
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        for r in tasks_dispatch(device=device, slots=2).replicas:
            # Distinct outputs (the owner's app may add a nonce): identical pairs are judged once.
            results_store([Report(device_id=device.pk, task_id=r.task_id, ok=True,
                                  output={"n": r.workunit.input["n"], "nonce": device.pk})])
    pool.warm(SLOW, app_id=slow.pk)   # warm already: what follows is judging, not a cold start

    started = time.monotonic()
    call_command("validator", "--once")
    held = time.monotonic() - started
    unit = honest_batch.workunits.get()
    print(f"owner B's one-result work unit was validated after {held:.1f} s "
          f"(state {unit.state})")
    assert unit.state == WorkUnit.State.COMPLETED
    assert held < 5
    # A's work unit is deferred, not paused: its results wait for the next passes, which
    # go on from the verdicts this one made.
    slow_unit = WorkUnit.objects.get(batch__app_version=slow_version)
    assert slow_unit.state == WorkUnit.State.OPEN and slow_unit.error_reason == ""
    assert slow_unit.replicas.filter(pending=True).count() == 4
