"""credit 0006 (+ volunteers 0007, projects 0007): the totals move into credit's rows, every
one kept, and back again. Run on whichever database the suite runs on (SQLite or
PostgreSQL)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("credit", "0005_merge_0004_creditreversal_0004_flops_approval"),
          ("volunteers", "0006_volunteer_merged_into"),
          ("projects", "0006_app_credibility_threshold_workunit_revalidated_at")]
AFTER = [("credit", "0006_credit_rows"), ("volunteers", "0007_credit_moved_to_credit"),
         ("projects", "0007_credit_moved_to_credit")]
TOTALS = {"credit_micro": 123_456_789, "rac": 4.25, "rac_time": 1_765_000_000.5,
          "rac_key": 17.125}


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_before(transactional_db):
    """The schema just before the move; the newest schema again afterwards."""
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_every_total_moves_into_credits_rows_and_back(at_before):
    apps = at_before
    Volunteer = apps.get_model("volunteers", "Volunteer")
    Team = apps.get_model("volunteers", "Team")
    Project = apps.get_model("projects", "Project")
    Badge = apps.get_model("volunteers", "Badge")
    team = Team.objects.create(name="Sievers", slug="sievers", **TOTALS)
    rich = Volunteer.objects.create(name="Rich", team=team, **TOTALS)
    poor = Volunteer.objects.create(name="New")  # no credit yet: zero, no RAC time
    project = Project.objects.create(slug="p", title="P", credit_micro=7, rac=0.5,
                                     rac_time=1_765_000_001.0, rac_key=-3.5)
    Badge.objects.create(volunteer=rich, kind="credit_1k", awarded_at="2026-12-01T00:00Z")

    apps = migrate(AFTER)
    fields = list(TOTALS)

    def row(model, pk):
        return apps.get_model("credit", model).objects.filter(pk=pk).values(*fields).get()

    assert row("VolunteerCredit", rich.pk) == TOTALS
    assert row("VolunteerCredit", poor.pk) == {"credit_micro": 0, "rac": 0.0,
                                               "rac_time": None, "rac_key": -1e9}
    assert row("TeamCredit", team.pk) == TOTALS
    assert row("ProjectCredit", project.pk) == {"credit_micro": 7, "rac": 0.5,
                                                "rac_time": 1_765_000_001.0, "rac_key": -3.5}
    badges = apps.get_model("credit", "Badge").objects.values_list("volunteer_id", "kind")
    assert list(badges) == [(rich.pk, "credit_1k")]
    assert "credit_micro" not in {f.name for f in
                                  apps.get_model("volunteers", "Volunteer")._meta.fields}

    apps = migrate(BEFORE)  # reversible: the columns come back with the same values
    Volunteer = apps.get_model("volunteers", "Volunteer")
    assert Volunteer.objects.filter(pk=rich.pk).values(*fields).get() == TOTALS
    assert apps.get_model("volunteers", "Team").objects.values(*fields).get() == TOTALS
    assert apps.get_model("projects", "Project").objects.values_list(
        "credit_micro", flat=True).get() == 7
    assert apps.get_model("volunteers", "Badge").objects.count() == 1
