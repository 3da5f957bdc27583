import math

import pytest

from sparecycles.scheduler.validators import (
    check_set,
    comparator_for,
    exact_equal,
    tolerance_equal,
)


def test_exact_ignores_key_order_but_not_types():
    assert exact_equal({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert not exact_equal({"a": 1}, {"a": True})
    assert not exact_equal([1, 2], [2, 1])


def test_tolerance_walks_json_trees():
    a = {"pi": 3.14159, "runs": [1.0, 2.0], "name": "x"}
    assert tolerance_equal(a, {"pi": 3.1416, "runs": [1.0, 2.00001], "name": "x"}, abs_tol=1e-4)
    assert not tolerance_equal(a, {"pi": 3.2, "runs": [1.0, 2.0], "name": "x"}, abs_tol=1e-4)
    assert not tolerance_equal(a, {"pi": 3.14159, "runs": [1.0], "name": "x"}, abs_tol=1)
    assert not tolerance_equal({"n": "1"}, {"n": 1}, abs_tol=1)
    assert tolerance_equal(100.0, 101.0, rel_tol=0.02)
    assert tolerance_equal(math.nan, math.nan)


def test_custom_validator_runs_equivalent_and_survives_crashes():
    equal = comparator_for(validator="custom", options={},
                           code="def equivalent(a, b):\n    return a['k'] == b['k']\n")
    assert equal({"k": 1, "t": 5}, {"k": 1, "t": 6})
    assert not equal({"k": 1}, {})  # KeyError inside equivalent means "not equal"


def test_check_set_needs_a_strict_majority_and_the_quorum():
    assert check_set([1, 1], exact_equal, min_quorum=2) == [0, 1]
    assert check_set([1, 2], exact_equal, min_quorum=2) is None
    assert check_set([1, 2, 1], exact_equal, min_quorum=2) == [0, 2]
    assert check_set([1, 1, 2, 2], exact_equal, min_quorum=2) is None
    assert check_set([5], exact_equal, min_quorum=1) == [0]
    assert check_set([1, 1, 2], exact_equal, min_quorum=3) is None


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_tolerance_compares_outputs_of_any_depth_without_recursion():
    assert tolerance_equal(nested(5000), nested(5000))
    assert not tolerance_equal(nested(5000), nested(4999))
    deep_a, deep_b = {"x": nested(3000) + [1.0]}, {"x": nested(3000) + [1.0 + 1e-12]}
    assert tolerance_equal(deep_a, deep_b, abs_tol=1e-9)
    assert not tolerance_equal(deep_a, deep_b)


def test_a_builtin_comparator_that_fails_on_a_pair_says_not_equal():
    exact = comparator_for(validator="exact", options={})
    assert exact(nested(5000), nested(5000)) is False   # json.dumps: RecursionError
    assert exact({"a": 1}, {"a": 1}) is True


# Found by the red team (tests/redteam/README.md, issue 14).
@pytest.mark.django_db(transaction=True)
def test_deep_outputs_for_a_tolerance_app_do_not_stall_other_owners_work(app, project):
    """Two cheater devices return 600-deep lists for one work unit of a built-in
    "tolerance" app (stored as if they had come in before the gateway's depth limit).
    tolerance_equal recursed and raised RecursionError, which aborted the transaction of
    the whole validation pass: every owner's work unit stayed pending, pass after pass."""
    from django.core.management import call_command

    from sparecycles.projects.models import App, WorkUnit
    from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
    from sparecycles.scheduler.intake import Report, results_store
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.models import DeviceCredibility
    from sparecycles.volunteers.services import device_connect

    identity = b"def main(i):\n    return i\n"
    deep = nested(600)
    tolerant = App.objects.create(project=project, name="tol", title="tol",
                                  validator="tolerance", validator_options={"abs_tol": 1e-9})
    tol_batch = batch_create(app_version=app_version_create(app=tolerant, code=identity),
                             name="t", inputs=[{"n": 1}],
                             quorum=QuorumParams(min_quorum=2, target_nresults=2))
    honest_batch = batch_create(app_version=app_version_create(app=app, code=identity),
                                name="h", inputs=[{"n": 2}],
                                quorum=QuorumParams(min_quorum=1, target_nresults=1))
    outputs = {tol_batch.pk: deep, honest_batch.pk: {"n": 2}}
    for _ in range(5):   # dispatch is random: each device answers whichever it got
        device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
        DeviceCredibility.objects.create(device=device, confirmed=20)  # established
        for replica in tasks_dispatch(device=device, slots=1).replicas:
            results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                                  output=outputs[replica.workunit.batch_id])])
    call_command("validator", "--once")
    assert honest_batch.workunits.get().state == WorkUnit.State.COMPLETED
    assert tol_batch.workunits.get().state == WorkUnit.State.COMPLETED   # they agree

