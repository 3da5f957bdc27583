"""A volunteer merged into an account (a claimed browser) is never listed on its own:
not on the boards, the project page's top contributors, the stats export or its profile."""

import pytest

from sparecycles.accounts.services import device_claim
from sparecycles.credit.models import CreditGrant
from sparecycles.credit.selectors import project_top_contributors
from sparecycles.credit.stats_export import user_rows
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Volunteer
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def merged(make_batch, owner, project):
    """An anonymous browser earns twice, one grant already paid in a closed epoch (so it
    stays with the anonymous volunteer), then its owner signs up and claims it."""
    make_batch(count=2, min_quorum=1, target_nresults=1)
    session = device_connect(token=None)
    for replica in tasks_dispatch(device=session.device, slots=2).replicas:
        replica_report(device=session.device, task_id=replica.task_id, ok=True,
                       output={"n": 1})
    anonymous = session.device.volunteer
    device_claim(user=owner, token=session.new_token)
    account = Volunteer.objects.get(user=owner)
    # As if the first grant had been sealed in an epoch before the claim.
    CreditGrant.objects.filter(pk=CreditGrant.objects.order_by("pk")[0].pk).update(
        volunteer=anonymous)
    return Volunteer.objects.get(pk=anonymous.pk), account


def test_top_contributors_count_a_paid_grant_for_the_account(merged, project):
    anonymous, account = merged
    assert anonymous.merged_into == account
    rows = project_top_contributors(project=project)
    assert [(row["name"], row["results"]) for row in rows] == [(account.public_name, 2)]


def test_boards_and_the_stats_export_leave_it_out(merged, client):
    anonymous, account = merged
    rows = client.get("/leaderboards/volunteers/?format=json").json()["rows"]
    assert [row["id"] for row in rows] == [account.pk]
    by_rac = client.get("/leaderboards/volunteers/?format=json&order=rac").json()["rows"]
    assert [row["id"] for row in by_rac] == [account.pk]
    assert [row["id"] for row in user_rows()] == [account.pk]


def test_its_profile_leads_to_the_account(merged, client):
    anonymous, account = merged
    response = client.get(f"/volunteers/{anonymous.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/volunteers/{account.pk}/"
