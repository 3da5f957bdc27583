"""Credit arithmetic: once per valid replica, the same for all valid replicas, nothing else."""

import threading

import pytest
from django.db import connection

from sparecycles.credit.models import (
    MICRO,
    Badge,
    CreditGrant,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    credit_micro_for_flops,
)
from sparecycles.credit.selectors import volunteer_credit_micro
from sparecycles.credit.services import credit_grant
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.validation.sweeps import replicas_time_out

pytestmark = pytest.mark.django_db


def report(make_device, output, ok=True, establish=None):
    device = make_device().device
    if establish is not None:  # a device with a record, able to settle a quorum
        establish(device)
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=ok, output=output, error="x")
    return device, replica


def credit_of(device):
    return volunteer_credit_micro(volunteer_id=device.volunteer_id)


def test_boinc_unit():
    assert credit_micro_for_flops(86_400e9 / 200) == MICRO  # one 1-GFLOPS day = 200 credit
    assert credit_micro_for_flops(86_400e9) == 200 * MICRO


def test_valid_replicas_get_the_same_credit_and_invalid_get_none(make_batch, make_device,
                                                                establish):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    a, _ = report(make_device, {"x": 1}, establish=establish)
    liar, _ = report(make_device, {"x": 2})
    b, _ = report(make_device, {"x": 1})
    assert credit_of(a) == credit_of(b) == MICRO  # the app is worth 1 credit per unit
    assert credit_of(liar) == 0
    assert CreditGrant.objects.count() == 2


def test_errors_and_timeouts_earn_nothing(make_batch, make_device):
    import datetime as dt

    from django.utils import timezone

    make_batch(count=1, delay_bound=1, max_total_results=5)
    flaky, _ = report(make_device, None, ok=False)
    slow = make_device().device
    tasks_dispatch(device=slow, slots=1)
    replicas_time_out(now=timezone.now() + dt.timedelta(hours=1))
    assert credit_of(flaky) == credit_of(slow) == 0
    assert not CreditGrant.objects.exists()


def test_late_results_earn_nothing_valid_or_not(make_batch, make_device):
    # Issue 15: a result after the canonical output was published may be a copy of it.
    make_batch(count=1, min_quorum=1, target_nresults=3)
    late_good, late_bad = make_device().device, make_device().device
    good_replica = tasks_dispatch(device=late_good, slots=1).replicas[0]
    bad_replica = tasks_dispatch(device=late_bad, slots=1).replicas[0]
    first, _ = report(make_device, {"x": 1})
    replica_report(device=late_good, task_id=good_replica.task_id, ok=True, output={"x": 1})
    replica_report(device=late_bad, task_id=bad_replica.task_id, ok=True, output={"x": 9})
    assert credit_of(first) == MICRO
    assert credit_of(late_good) == credit_of(late_bad) == 0


def test_duplicate_results_and_repeated_grants_pay_once(make_batch, make_device):
    make_batch(count=1)
    device, replica = report(make_device, {"x": 1})
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    replica.refresh_from_db()
    assert credit_grant(replica=replica) is None
    assert credit_of(device) == MICRO
    assert CreditGrant.objects.count() == 1


def test_totals_for_project_and_team(make_batch, make_device, project):
    from sparecycles.volunteers.services import team_create

    make_batch(count=2)
    device = make_device().device
    team = team_create(founder=device.volunteer, name="Crunchers")
    for _ in range(2):
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    project, team = ProjectCredit.objects.get(pk=project.pk), TeamCredit.objects.get(pk=team.pk)
    assert project.credit_micro == team.credit_micro == 2 * MICRO
    assert team.recent_average_credit > 0


def test_first_valid_result_earns_a_badge(make_batch, make_device):
    make_batch(count=1)
    device, _ = report(make_device, {"x": 1})
    assert list(Badge.objects.filter(volunteer_id=device.volunteer_id)
                .values_list("kind", flat=True)) == ["first_valid"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real row locks: PostgreSQL")
def test_concurrent_validations_grant_once(make_batch, make_device):
    make_batch(count=1)
    device, replica = report(make_device, {"x": 1})
    CreditGrant.objects.all().delete()
    VolunteerCredit.objects.filter(pk=device.volunteer_id).update(credit_micro=0)
    replica.refresh_from_db()
    barrier = threading.Barrier(4)

    def grant():
        from django.db import transaction

        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                credit_grant(replica=Replica.objects.get(pk=replica.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert CreditGrant.objects.filter(replica=replica).count() == 1
    assert credit_of(device) == MICRO
    assert WorkUnit.objects.get().state == WorkUnit.State.COMPLETED


def test_milestone_badges_come_with_the_grant_that_crosses_them(make_batch, make_device):
    make_batch(count=2)
    device = make_device().device
    VolunteerCredit.objects.create(pk=device.volunteer_id, credit_micro=999 * MICRO + 1)
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    kinds = set(Badge.objects.filter(volunteer_id=device.volunteer_id)
                .values_list("kind", flat=True))
    assert kinds == {"credit_1k"}  # not first_valid: the volunteer already had credit


def test_a_week_of_daily_credit_earns_the_streak_badge(make_batch, make_device):
    import datetime as dt

    from django.utils import timezone

    make_batch(count=1)
    device, replica = report(make_device, {"x": 1})
    grant = CreditGrant.objects.get()
    for days_ago in range(1, 7):
        CreditGrant.objects.create(
            replica=Replica.objects.create(workunit=grant.workunit), workunit=grant.workunit,
            project=grant.project, volunteer=grant.volunteer, amount_micro=1,
            granted_at=timezone.now() - dt.timedelta(days=days_ago))
    VolunteerCredit.objects.filter(pk=device.volunteer_id).update(rac_time=None)  # a new day
    make_batch(count=1)
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    assert Badge.objects.filter(volunteer_id=device.volunteer_id, kind="streak_7").exists()
