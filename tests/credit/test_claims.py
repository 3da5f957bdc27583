"""credit.claims: what credit_grant_many asks — micro-credits per valid replica."""

import datetime as dt

import pytest
from django.utils import timezone

from sparecycles.credit.claims import _samples, claim_of, replicas_credit_micro
from sparecycles.credit.models import CreditGrant
from sparecycles.credit.normalisation import micro_credit_for_ms
from sparecycles.projects.models import App
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def unapproved(project):
    app = App.objects.create(project=project, name="free", title="Free")
    return app_version_create(app=app, code=b"def main(input):\n    return input\n",
                              flops_per_unit=1e24)


def test_a_reported_time_longer_than_the_wall_time_is_clamped(unapproved, make_device):
    batch_create(app_version=unapproved, name="b", inputs=[{"n": 1}],
                 quorum=QuorumParams(min_quorum=1, target_nresults=1))
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    Replica.objects.filter(pk=replica.pk).update(
        sent_at=timezone.now() - dt.timedelta(seconds=2))
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"n": 1},
                   elapsed_ms=10**10)     # claims 115 days
    grant = CreditGrant.objects.get(replica=replica)
    # At most the ~2 s that passed (plus the test's own run time), not 115 days.
    assert 0 < grant.amount_micro <= micro_credit_for_ms(60_000, reference_gflops=1.0)


def test_a_late_valid_replica_gets_the_credit_granted_before(unapproved, make_device):
    batch = batch_create(app_version=unapproved, name="b", inputs=[{"n": 1}],
                         quorum=QuorumParams(min_quorum=1, target_nresults=1))
    unit = batch.workunits.get()
    first, late = make_device().device, make_device().device
    replica = tasks_dispatch(device=first, slots=1).replicas[0]
    Replica.objects.filter(pk=replica.pk).update(
        sent_at=timezone.now() - dt.timedelta(seconds=5))
    replica_report(device=first, task_id=replica.task_id, ok=True, output={"n": 1},
                   elapsed_ms=3000)
    granted = CreditGrant.objects.get(replica=replica).amount_micro
    other = Replica.objects.create(
        workunit=unit, device=late, volunteer_id=late.volunteer_id,
        server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.SUCCESS,
        validate_state=Replica.ValidateState.VALID, elapsed_ms=1,
        sent_at=timezone.now() - dt.timedelta(seconds=5), received_at=timezone.now())
    other = Replica.objects.select_related("workunit__app_version").get(pk=other.pk)
    assert replicas_credit_micro(replicas=[other]) == {other.pk: granted}


def test_no_reported_time_earns_nothing_and_the_declared_estimate_cannot_help(unapproved,
                                                                              make_device):
    batch_create(app_version=unapproved, name="b", inputs=[{"n": 1}],
                 quorum=QuorumParams(min_quorum=1, target_nresults=1))
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"n": 1})
    assert CreditGrant.objects.get(replica=replica).amount_micro == 0


def test_the_database_subtracts_wall_times_exactly_as_a_claim_does(unapproved, make_device):
    """Samples get their wall time from the database (credit.claims._samples), claims from
    the loaded replica (wall_ms): the clamped times must be the same to the last bit."""
    batch = batch_create(app_version=unapproved, name="b", inputs=[{"n": i} for i in range(6)],
                         quorum=QuorumParams(min_quorum=1, target_nresults=1))
    device = make_device().device
    now = timezone.now().replace(microsecond=123_457)
    walls = [dt.timedelta(microseconds=1), dt.timedelta(seconds=1, microseconds=999_999),
             dt.timedelta(days=3, hours=5, microseconds=7), -dt.timedelta(milliseconds=3),
             dt.timedelta(milliseconds=1234, microseconds=567), None]
    Replica.objects.bulk_create([
        Replica(workunit=unit, device=device, volunteer_id=device.volunteer_id,
                server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.SUCCESS,
                validate_state=Replica.ValidateState.VALID, elapsed_ms=10**9,
                sent_at=None if wall is None else now - wall, received_at=now)
        for unit, wall in zip(batch.workunits.order_by("id"), walls, strict=True)])
    replicas = Replica.objects.filter(device=device).order_by("-id")
    samples = _samples(replicas)
    expected = [claim_of(r).elapsed_ms for r in replicas]
    assert [s.elapsed_ms for s in samples] == expected
    assert expected[0] == 10**9 and expected[1] == 1234.567 and expected[2] == 0.0
    assert 0 < expected[-1] < 0.01
