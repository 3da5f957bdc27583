"""Quorum, consensus and replication as results arrive."""

import pytest

from sparecycles.credit.models import CreditGrant
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import ValidationAudit
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


def report(make_device, output, establish=None):
    device = make_device().device
    if establish is not None:
        establish(device)
    replicas = tasks_dispatch(device=device, slots=1).replicas
    assert replicas, "expected a task to be available"
    replica_report(device=device, task_id=replicas[0].task_id, ok=True, output=output)
    return replicas[0]


def states(workunit):
    return [r.status for r in workunit.replicas.order_by("id")]


def test_two_agreeing_results_form_a_quorum(make_batch, make_device, establish):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    report(make_device, {"x": 1}, establish)
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    report(make_device, {"x": 1})
    workunit.refresh_from_db()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert states(workunit) == ["valid", "valid"]


def test_disagreement_issues_one_more_replica_and_the_majority_wins(make_batch, make_device,
                                                                   establish):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    report(make_device, {"x": 1}, establish)
    report(make_device, {"x": 666})
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    assert states(workunit) == ["inconclusive", "inconclusive", "unsent"]
    report(make_device, {"x": 1})
    workunit.refresh_from_db()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert workunit.canonical_output == {"x": 1}
    # Which of the first two replicas each device got is random: compare as a multiset.
    assert sorted(states(workunit)) == ["invalid", "valid", "valid"]


def test_no_consensus_within_max_success_results_fails(make_batch, make_device):
    make_batch(count=1, min_quorum=2, target_nresults=2, max_success_results=3)
    for value in (1, 2, 3):
        report(make_device, {"x": value})
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.FAILED
    assert "No consensus" in workunit.error_reason


def test_max_total_results_ends_a_hopeless_workunit(make_batch, make_device):
    make_batch(count=1, min_quorum=2, target_nresults=2, max_total_results=2)
    report(make_device, {"x": 1})
    report(make_device, {"x": 2})
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.FAILED
    assert "max_total_results" in workunit.error_reason


def test_finished_workunit_cancels_outstanding_replicas(make_batch, make_device):
    make_batch(count=1, min_quorum=1, target_nresults=2)
    slow = make_device().device
    slow_replica = tasks_dispatch(device=slow, slots=1).replicas[0]
    report(make_device, {"x": 1})
    slow_replica.refresh_from_db()
    assert slow_replica.server_state == Replica.ServerState.OVER
    assert slow_replica.status == "cancelled"
    # Its result still arrives: accepted and stored, shown as too late, and worth nothing:
    # the canonical output may be public by now (issue 15: copying a tile earned credit).
    ack = replica_report(device=slow, task_id=slow_replica.task_id, ok=True, output={"x": 1})
    assert ack.accepted and not ack.duplicate
    slow_replica.refresh_from_db()
    assert slow_replica.status == "too late"
    assert slow_replica.output == {"x": 1}
    assert not CreditGrant.objects.filter(replica=slow_replica).exists()
    assert ValidationAudit.objects.filter(kind="late", workunit=slow_replica.workunit).exists()


def test_a_late_copy_of_a_published_canonical_output_earns_no_credit(make_batch, make_device):
    # The attack of issue 15: read the public tile, report it after the work unit closed.
    make_batch(count=1, min_quorum=1, target_nresults=2)
    copier = make_device().device
    held = tasks_dispatch(device=copier, slots=1).replicas[0]
    report(make_device, {"x": 1})
    published = WorkUnit.objects.get().canonical_output
    replica_report(device=copier, task_id=held.task_id, ok=True, output=published)
    held.refresh_from_db()
    assert held.status == "too late"
    assert not CreditGrant.objects.filter(device=copier).exists()


def test_late_wrong_result_is_stored_too_late(make_batch, make_device):
    make_batch(count=1, min_quorum=1, target_nresults=2)
    slow = make_device().device
    slow_replica = tasks_dispatch(device=slow, slots=1).replicas[0]
    report(make_device, {"x": 1})
    replica_report(device=slow, task_id=slow_replica.task_id, ok=True, output={"x": 2})
    slow_replica.refresh_from_db()
    assert slow_replica.status == "too late"
