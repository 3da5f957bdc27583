"""bench_leaderboards, run small: seeding keeps the aggregates consistent, timings come out."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.models import Sum

from sparecycles.credit.models import TeamCredit, VolunteerCredit, VolunteerProjectCredit
from sparecycles.leaderboards import bench
from sparecycles.volunteers.models import Team, Volunteer

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


def test_seed_keeps_team_and_project_totals_consistent():
    seeded = bench.seed(volunteers=300, teams=7, log=lambda line: None)
    assert Volunteer.objects.count() == 300 and Team.objects.count() == 7
    for team in Team.objects.all():
        members = Volunteer.objects.filter(team=team)
        assert team.member_count == members.count()
        assert TeamCredit.objects.get(pk=team.pk).credit_micro == (VolunteerCredit.objects.filter(
            volunteer__in=members).aggregate(s=Sum("credit_micro"))["s"] or 0)
    on_board = VolunteerCredit.objects.filter(credit_micro__gt=0)
    assert VolunteerProjectCredit.objects.filter(project=seeded.project).count() == \
        on_board.count()
    # RAC and credit boards hold the same rows.
    assert on_board.count() == VolunteerCredit.objects.filter(rac_key__gt=-1e9).count()


def test_measurements_cover_every_board_and_the_grant():
    seeded = bench.seed(volunteers=200, teams=5, log=lambda line: None)
    timings = bench.measure_pages(seeded, repeat=2)
    timings.append(bench.measure_grants(seeded, count=5))
    labels = [t.label for t in timings]
    assert labels[0] == "baseline: GET /healthz"
    assert sum("volunteers by" in label for label in labels) == 6
    assert sum("project by" in label for label in labels) == 6
    assert labels[-1].startswith("credit_grant")
    assert all(0 < t.p50_ms <= t.p95_ms for t in timings)
    plans = dict(bench.explain_plans(seeded))
    assert len(plans) == 13


def test_the_command_runs_in_a_throwaway_database(tmp_path):
    """Run as a user would, in its own process, with var/ in a temporary folder (and the
    embedded SQLite mode, so no PostgreSQL test database of this run can be touched)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SPARECYCLES_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "bench_leaderboards", "--volunteers", "60", "--teams", "3",
         "--repeat", "1", "--grants", "2", "--explain"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"Throwaway sqlite database: {tmp_path}/bench-" in result.stdout
    assert "credit_grant on a fresh valid replica" in result.stdout
    assert "USING COVERING INDEX vcredit_rac_rank" in result.stdout
    assert not (tmp_path / "sparecycles.sqlite3").exists()  # the site's own DB: untouched
    assert not list(tmp_path.glob("bench-*.sqlite3"))        # and the throwaway one is gone
