"""credit_reverse_many: a reversal row beside each grant, every total reduced, once."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from sparecycles.accounts.selectors import device_rows
from sparecycles.credit.models import (
    MICRO,
    CreditGrant,
    CreditReversal,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)
from sparecycles.credit.selectors import project_top_contributors
from sparecycles.credit.services import ReversalError, credit_grant, credit_reverse_many
from sparecycles.credit.stats_export import host_rows
from sparecycles.projects.models import Project
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Volunteer
from sparecycles.volunteers.services import team_create

pytestmark = pytest.mark.django_db


def earn(device) -> Replica:
    """One valid result at quorum 1: one credit (the test app's estimate)."""
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    return replica


@pytest.fixture
def two_volunteers(make_batch, make_device):
    """A cheat (3 results, in a team) ahead of an honest volunteer (2 results)."""
    make_batch(count=5, min_quorum=1, target_nresults=1)
    cheat_device, honest_device = make_device().device, make_device().device
    cheat = Volunteer.objects.get(pk=cheat_device.volunteer_id)
    team = team_create(founder=cheat, name="Fast Friends")
    cheat_replicas = [earn(cheat_device) for _ in range(3)]
    for _ in range(2):
        earn(honest_device)
    return cheat_device, honest_device, team, cheat_replicas


def board(client) -> list[int]:
    return [row["id"] for row in client.get("/leaderboards/api/volunteers").json()["rows"]]


def totals(volunteer_id: int) -> dict:
    volunteer = Volunteer.objects.get(pk=volunteer_id)
    return {
        "volunteer": VolunteerCredit.objects.get(pk=volunteer_id).credit_micro,
        "team": TeamCredit.objects.get(pk=volunteer.team_id).credit_micro if volunteer.team_id
        else None,
        "pair": VolunteerProjectCredit.objects.get(volunteer=volunteer).credit_micro,
        "project": ProjectCredit.objects.get().credit_micro,
    }


def test_reversal_rows_sit_beside_the_grants_and_every_total_drops(two_volunteers, client):
    cheat_device, honest_device, team, replicas = two_volunteers
    cheat_id, honest_id = cheat_device.volunteer_id, honest_device.volunteer_id
    assert board(client) == [cheat_id, honest_id]
    before = totals(cheat_id)
    assert before == {"volunteer": 3 * MICRO, "team": 3 * MICRO, "pair": 3 * MICRO,
                      "project": 5 * MICRO}
    cheat = Volunteer.objects.get(pk=cheat_id)
    rac_before = VolunteerCredit.objects.get(pk=cheat_id).rac
    team_rac_before = TeamCredit.objects.get(pk=team.pk).rac
    grants_before = list(CreditGrant.objects.order_by("pk").values_list("pk", "amount_micro"))

    assert credit_reverse_many(replica_ids=[r.pk for r in replicas[:2]],
                               reason="failed a spot check") == 2

    # The grants are untouched; each reversed one has a reversal row of its amount.
    assert list(CreditGrant.objects.order_by("pk").values_list("pk", "amount_micro")) == \
        grants_before
    reversals = CreditReversal.objects.order_by("replica_id")
    assert [(r.replica_id, r.amount_micro, r.volunteer_id, r.team_id, r.reason)
            for r in reversals] == [(pk, MICRO, cheat_id, team.pk, "failed a spot check")
                                    for pk in sorted(r.pk for r in replicas[:2])]
    assert totals(cheat_id) == {"volunteer": MICRO, "team": MICRO, "pair": MICRO,
                                "project": 3 * MICRO}
    assert totals(honest_id)["volunteer"] == 2 * MICRO
    cheat.refresh_from_db()
    cheat_credit = VolunteerCredit.objects.get(pk=cheat_id)
    assert 0 < cheat_credit.rac < rac_before and cheat_credit.rac_key < VolunteerCredit.objects.get(
        pk=honest_id).rac_key
    assert TeamCredit.objects.get(pk=team.pk).rac < team_rac_before
    # Devices are summed from the grants that stand.
    [row] = device_rows(volunteer=cheat)
    assert row.credit == 1.0
    hosts = {h["id"]: h["total_credit"] for h in host_rows()}
    assert hosts[cheat_device.pk] == 1.0 and hosts[honest_device.pk] == 2.0
    top = project_top_contributors(project=Project.objects.get())
    assert [t["credit"] for t in top] == [2.0, 1.0]
    # The boards rank by the maintained totals: the honest volunteer is first now.
    assert board(client) == [honest_id, cheat_id]
    by_rac = client.get("/leaderboards/api/volunteers?order=rac").json()["rows"]
    assert [r["id"] for r in by_rac] == [honest_id, cheat_id]


def test_reversing_twice_reverses_once(two_volunteers):
    cheat_device, _, _, replicas = two_volunteers
    ids = [r.pk for r in replicas]
    assert credit_reverse_many(replica_ids=ids[:2], reason="first") == 2
    after_first = totals(cheat_device.volunteer_id)
    assert credit_reverse_many(replica_ids=ids, reason="second") == 1   # only the third
    assert credit_reverse_many(replica_ids=ids, reason="third") == 0
    assert CreditReversal.objects.count() == 3
    assert totals(cheat_device.volunteer_id) == {
        "volunteer": 0, "team": 0, "pair": 0, "project": 2 * MICRO}
    assert after_first["volunteer"] == MICRO


def test_the_database_refuses_a_second_reversal_of_a_grant(two_volunteers):
    _, _, _, replicas = two_volunteers
    credit_reverse_many(replica_ids=[replicas[0].pk], reason="once")
    first = CreditReversal.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditReversal.objects.create(
            grant=first.grant, replica_id=first.replica_id, project_id=first.project_id,
            volunteer_id=first.volunteer_id, amount_micro=first.amount_micro, reason="twice",
            reversed_at=first.reversed_at)


def test_replicas_without_credit_are_skipped(make_batch, make_device):
    make_batch(count=2, min_quorum=1, target_nresults=1)
    device = make_device().device
    pending = tasks_dispatch(device=device, slots=1).replicas[0]
    assert credit_reverse_many(replica_ids=[pending.pk, 10**9], reason="nothing there") == 0
    assert credit_reverse_many(replica_ids=[], reason="nothing") == 0
    assert not CreditReversal.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201, None])
def test_a_reversal_needs_a_short_reason(two_volunteers, reason):
    _, _, _, replicas = two_volunteers
    with pytest.raises(ReversalError):
        credit_reverse_many(replica_ids=[replicas[0].pk], reason=reason)
    assert not CreditReversal.objects.exists()
    assert totals(replicas[0].volunteer_id)["volunteer"] == 3 * MICRO


def test_bad_replica_ids_are_refused(two_volunteers):
    with pytest.raises(ReversalError):
        credit_reverse_many(replica_ids="123", reason="x")
    with pytest.raises(ReversalError):
        credit_reverse_many(replica_ids=[1.5], reason="x")


def test_credit_of_a_claimed_device_is_reversed_at_the_account(two_volunteers, make_device):
    """volunteer_merge moves totals to the account but leaves sealed grants behind."""
    from sparecycles.accounts.services import volunteer_merge
    from sparecycles.ledger.models import EpochCredit
    from sparecycles.ledger.services import epochs_close_due, ledger_init

    cheat_device, _, _, replicas = two_volunteers
    ledger_init()
    epochs_close_due(now=CreditGrant.objects.latest("granted_at").granted_at
                     + __import__("datetime").timedelta(days=2))
    assert EpochCredit.objects.count() == 5
    account = Volunteer.objects.create(name="Account")
    with transaction.atomic():
        volunteer_merge(source=Volunteer.objects.get(pk=cheat_device.volunteer_id),
                        target=account)
    assert VolunteerCredit.objects.get(pk=account.pk).credit_micro == 3 * MICRO
    assert CreditGrant.objects.get(replica=replicas[0]).volunteer_id == cheat_device.volunteer_id
    assert credit_reverse_many(replica_ids=[replicas[0].pk], reason="merged") == 1
    assert VolunteerCredit.objects.get(pk=account.pk).credit_micro == 2 * MICRO
    assert VolunteerCredit.objects.get(pk=cheat_device.volunteer_id).credit_micro == 0
    assert CreditReversal.objects.get().volunteer_id == account.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real row locks: PostgreSQL")
def test_concurrent_reversals_and_grants_count_each_grant_once(make_batch, make_device):
    """Overlapping reversals race with new grants to the same volunteer, team and project:
    every grant is reversed exactly once, and the totals end exact."""
    make_batch(count=8, min_quorum=1, target_nresults=1)
    device = make_device().device
    team_create(founder=Volunteer.objects.get(pk=device.volunteer_id), name="Racers")
    replicas = [earn(device) for _ in range(8)]
    reversed_ids = [r.pk for r in replicas[:4]]
    regrant = replicas[4:]
    # Undo the last four grants (a test set-up, not a service) so threads grant them again.
    CreditGrant.objects.filter(replica__in=regrant).delete()
    for model in (VolunteerCredit, TeamCredit, ProjectCredit, VolunteerProjectCredit):
        model.objects.update(credit_micro=4 * MICRO)
    sets = [reversed_ids, reversed_ids[:2], reversed_ids[1:3], reversed_ids[2:],
            reversed_ids[::2], reversed_ids[::-1]]
    barrier = threading.Barrier(len(sets) + len(regrant))
    counts, errors = [], []

    def reverse(ids):
        try:
            barrier.wait(timeout=30)
            counts.append(credit_reverse_many(replica_ids=ids, reason="race"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def grant(replica_id):
        try:
            with transaction.atomic():
                barrier.wait(timeout=30)
                credit_grant(replica=Replica.objects.select_related(
                    "workunit__app_version__app").get(pk=replica_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reverse, args=(ids,)) for ids in sets]
    threads += [threading.Thread(target=grant, args=(r.pk,)) for r in regrant]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == 4
    assert CreditReversal.objects.count() == 4
    reversed_replicas = CreditReversal.objects.values_list("replica_id", flat=True)
    assert sorted(reversed_replicas) == sorted(reversed_ids)
    assert CreditGrant.objects.count() == 8
    volunteer = VolunteerCredit.objects.get(pk=device.volunteer_id)
    assert volunteer.credit_micro == 4 * MICRO   # 4 set up - 4 reversed + 4 granted again
    assert TeamCredit.objects.get().credit_micro == 4 * MICRO
    assert ProjectCredit.objects.get().credit_micro == 4 * MICRO
    assert VolunteerProjectCredit.objects.get().credit_micro == 4 * MICRO
