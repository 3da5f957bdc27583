"""Per-project credit per volunteer: maintained by credit_grant, folded on merge."""

import importlib
import math

import pytest
from django.apps import apps

from sparecycles.accounts.services import device_claim
from sparecycles.credit.averages import rac_now
from sparecycles.credit.models import MICRO, CreditGrant, VolunteerCredit, VolunteerProjectCredit
from sparecycles.credit.services import credit_grant
from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Volunteer
from sparecycles.volunteers.services import device_connect
from tests.conftest import approved

pytestmark = pytest.mark.django_db


def earn(device):
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    return replica


@pytest.fixture
def second_project(db):
    project = Project.objects.create(slug="cubes", title="Cubes")
    app = App.objects.create(project=project, name="cube", title="Cubes")
    version = approved(app_version_create(app=app, code=b"def main(input):\n    return input\n",
                                          flops_per_unit=3 * 432e9))  # 3 credit, approved
    return project, version


def rows():
    return {(r.project.slug, r.volunteer_id): r.credit_micro
            for r in VolunteerProjectCredit.objects.select_related("project")}


def test_each_grant_adds_to_the_volunteers_row_of_that_project(make_batch, make_device,
                                                                second_project):
    project, version = second_project
    make_batch(count=2)
    batch_create(app_version=version, name="cubes", inputs=[{"n": 1}], quorum=QuorumParams())
    device = make_device().device
    for _ in range(3):
        earn(device)
    volunteer = Volunteer.objects.get(pk=device.volunteer_id)
    assert rows() == {("squares", volunteer.pk): 2 * MICRO, ("cubes", volunteer.pk): 3 * MICRO}
    assert VolunteerCredit.objects.get(pk=volunteer.pk).credit_micro == 5 * MICRO  # no double
    row = VolunteerProjectCredit.objects.get(project=project)
    assert row.rac > 0 and row.rac_key > -1e9


def test_a_repeated_grant_changes_no_row(make_batch, make_device):
    make_batch(count=1)
    replica = earn(make_device().device)
    replica.refresh_from_db()
    before = rows()
    assert credit_grant(replica=replica) is None
    assert rows() == before and CreditGrant.objects.count() == 1


def test_claiming_folds_the_anonymous_rows_into_the_account(make_batch, make_device, owner,
                                                           second_project):
    _, version = second_project
    make_batch(count=2)
    batch_create(app_version=version, name="cubes", inputs=[{"n": 1}], quorum=QuorumParams())
    mine = device_connect(token=None, user=owner, capabilities={"runtimes": ["pyodide"]}).device
    earn(mine)                      # one task, already the account's
    anonymous = make_device()
    earn(anonymous.device)          # dispatch is randomised: which two of the three
    earn(anonymous.device)          # tasks (two squares, one cube) this device gets varies
    target = Volunteer.objects.get(user=owner)
    before = list(VolunteerProjectCredit.objects.filter(
        volunteer__in=[target, anonymous.device.volunteer]).select_related("project"))
    device_claim(user=owner, token=anonymous.new_token)
    assert rows() == {("squares", target.pk): 2 * MICRO, ("cubes", target.pk): 3 * MICRO}
    for slug in ("squares", "cubes"):
        merged = VolunteerProjectCredit.objects.get(volunteer=target, project__slug=slug)
        now = merged.rac_time
        assert merged.rac == pytest.approx(sum(
            rac_now(rac=row.rac, rac_time=row.rac_time, now=now)
            for row in before if row.project.slug == slug))


def test_the_migration_backfills_rows_from_past_grants(make_batch, make_device):
    make_batch(count=2)
    device = make_device().device
    earn(device), earn(device)
    before = rows()
    VolunteerProjectCredit.objects.all().delete()
    migration = importlib.import_module(
        "sparecycles.credit.migrations.0003_volunteerprojectcredit")
    migration.backfill(apps, None)
    assert rows() == before
    # RAC from history: each grant decayed to now, credit/day (2 credit just now: 2·ln2/7).
    row = VolunteerProjectCredit.objects.get()
    assert row.rac == pytest.approx(2 * math.log(2) / 7, rel=1e-3)
