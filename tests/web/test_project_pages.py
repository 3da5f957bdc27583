"""Public project pages: description, progress chart, contributors, and the tile mosaic feed."""

import datetime as dt

import pytest
from django.utils import timezone

from sparecycles.projects.models import App, OutputView, Project, WorkUnit
from sparecycles.projects.selectors import project_progress_series, project_tiles
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.web import project_pages
from sparecycles.web.project_charts import progress_chart

pytestmark = pytest.mark.django_db
TILE_APP = b"def main(input):\n    return input\n"


@pytest.fixture
def tiles_app(project):
    app = App.objects.create(project=project, name="tiles", title="Tiles",
                             output_view=OutputView.IMAGE_TILES)
    version = app_version_create(app=app, code=TILE_APP)
    inputs = [{"tile": i, "level": 0, "x0": 64 * (i % 2), "y0": 64 * (i // 2), "size": 64,
               "width": 128, "height": 128, "max_iter": 8} for i in range(4)]
    batch = batch_create(app_version=version, name="tiles", inputs=inputs,
                         quorum=QuorumParams())
    return app, batch


def complete(workunit: WorkUnit, output) -> None:
    WorkUnit.objects.filter(pk=workunit.pk).update(
        state=WorkUnit.State.COMPLETED, canonical_output=output, completed_at=timezone.now())


def tile_output(unit: WorkUnit) -> dict:
    return {**unit.input, "iterations": [[1, 2], [3, 8]]}


def test_project_page_shows_description_progress_and_mosaic(client, project, tiles_app):
    project.description = "Counting squares.\n\nSecond paragraph."
    project.save()
    app, batch = tiles_app
    first = batch.workunits.order_by("seq").first()
    complete(first, tile_output(first))
    page = client.get("/projects/squares/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Squares</h1>" in html and "<p>Second paragraph.</p>" in html
    assert "1 of 4 work units validated" in html          # the chart's description
    assert 'class="pj-chart-line"' in html
    assert 'data-tiles-url="/projects/squares/tiles/tiles.json"' in html
    assert "projects/mosaic.js" in html
    assert "Nobody yet" in html


def test_private_and_unknown_projects_are_404(client, project):
    project.is_public = False
    project.save()
    assert client.get("/projects/squares/").status_code == 404
    assert client.get("/projects/nope/").status_code == 404
    assert "Squares" not in client.get("/projects/").content.decode()


def test_project_list(client, project, make_batch):
    make_batch(count=3)
    html = client.get("/projects/").content.decode()
    assert 'href="/projects/squares/"' in html and "0 of 3 work units validated" in html


def test_tiles_feed_pages_with_after(client, tiles_app):
    app, batch = tiles_app
    units = list(batch.workunits.order_by("seq"))
    for unit in units[:3]:
        complete(unit, tile_output(unit))
    complete(units[3], {"not": "a tile"})   # skipped, but the cursor moves past it
    body = client.get("/projects/squares/tiles/tiles.json").json()
    assert [t["x0"] for t in body["tiles"]] == [0, 64, 0]
    assert body["tiles"][0]["iterations"] == [[1, 2], [3, 8]]
    assert body["last"] == units[3].pk
    again = client.get(f"/projects/squares/tiles/tiles.json?after={body['last']}").json()
    assert again["tiles"] == [] and again["last"] == units[3].pk


@pytest.mark.parametrize("query", ["?after=x", "?after=-1", "?level=99999999999999999999999"])
def test_tiles_feed_refuses_bad_parameters(client, tiles_app, query):
    response = client.get(f"/projects/squares/tiles/tiles.json{query}")
    assert response.status_code == 400 and response.json()["detail"]  # the one error shape
    assert response.json()["code"] == "invalid"


def test_tiles_feed_of_an_app_without_tiles_is_404(client, app_version):
    assert client.get("/projects/squares/tiles/square.json").status_code == 404


def test_tiles_of_other_levels_are_left_out(tiles_app):
    app, batch = tiles_app
    unit = batch.workunits.order_by("seq").first()
    WorkUnit.objects.filter(pk=unit.pk).update(input={**unit.input, "level": 1})
    complete(unit, tile_output(unit))
    assert project_tiles(app=app, level=0)[0] == []
    assert len(project_tiles(app=app, level=1)[0]) == 1


def test_progress_series_is_cumulative(project, make_batch):
    batch = make_batch(count=3)
    now = timezone.now()
    units = list(batch.workunits.order_by("seq"))
    WorkUnit.objects.filter(pk__in=[u.pk for u in units]).update(
        created_at=now - dt.timedelta(hours=2))
    for unit, ago in zip(units[:2], (90, 10), strict=True):
        WorkUnit.objects.filter(pk=unit.pk).update(
            state=WorkUnit.State.COMPLETED, completed_at=now - dt.timedelta(minutes=ago))
    series = project_progress_series(project=project, points=5, now=now)
    assert [count for _, count in series] == [0, 1, 1, 1, 2]
    chart = progress_chart(series, total=3)
    assert chart["summary"].startswith("2 of 3 work units validated")
    assert len(chart["points"].split()) == 5


def test_an_empty_project_has_no_chart(client, db):
    Project.objects.create(slug="empty", title="Empty")
    html = client.get("/projects/empty/").content.decode()
    assert "the chart appears once the first batch is submitted" in html


def test_top_contributors_come_from_credit(client, project, make_batch):
    from sparecycles.credit.models import CreditGrant
    from sparecycles.scheduler.models import Replica
    from sparecycles.volunteers.models import Volunteer

    batch = make_batch(count=2)
    alice = Volunteer.objects.create(name="alice")
    hidden = Volunteer.objects.create(name="bob", show_anonymous=True)
    for unit, volunteer, micro in zip(batch.workunits.order_by("seq"), (alice, hidden),
                                      (3_000_000, 1_000_000), strict=True):
        replica = Replica.objects.filter(workunit=unit).first()
        CreditGrant.objects.create(replica=replica, workunit=unit, project=project,
                                   volunteer=volunteer, amount_micro=micro,
                                   granted_at=timezone.now())
    html = client.get("/projects/squares/").content.decode()
    assert html.index("alice") < html.index("Anonymous")
    assert "3.00" in html and "bob" not in html


def test_the_progress_fragment_is_what_the_page_shows_now(client, project, tiles_app):
    page = client.get("/projects/squares/").content.decode()
    assert 'data-live-url="/projects/squares/progress/"' in page
    assert 'data-live-ws="/ws/projects/squares/"' in page and "projects/live.js" in page
    _, batch = tiles_app
    first = batch.workunits.order_by("seq").first()
    complete(first, tile_output(first))
    fragment = client.get("/projects/squares/progress/")
    assert fragment.status_code == 200 and fragment["Cache-Control"] == "no-store"
    html = fragment.content.decode()
    assert '<dd id="pj-completed">1</dd>' in html and '<dd id="pj-open">3</dd>' in html
    assert "1 of 4 work units validated" in html and "<html" not in html
    project.is_public = False
    project.save()
    assert client.get("/projects/squares/progress/").status_code == 404


def test_the_contributors_fragment_lists_who_earned_credit(client, project, make_batch,
                                                           make_device, earn, monkeypatch):
    monkeypatch.setattr(project_pages, "LIVE_FRESH_S", 0)  # every fetch a fresh count
    page = client.get("/projects/squares/").content.decode()
    assert 'data-live-url="/projects/squares/contributors/"' in page
    assert "Nobody yet" in client.get("/projects/squares/contributors/").content.decode()
    make_batch(count=1, min_quorum=1, target_nresults=1)
    earn(make_device().device)
    html = client.get("/projects/squares/contributors/").content.decode()
    assert '<td class="pj-name">' in html and "Nobody yet" not in html
    assert client.get("/projects/nope/contributors/").status_code == 404


def _counting(queries) -> int:
    return sum(1 for q in queries
               if "projects_workunit" in q["sql"] or "credit_creditgrant" in q["sql"])


def test_a_burst_of_live_viewers_costs_one_count_not_one_per_viewer(client, project, tiles_app,
                                                                     monkeypatch):
    """Red team: every open project page refetched both live parts on each "changed" (once
    a second, all at once), and each counted the project's work units or grants: 0.55 s of
    database per viewer per second for a 200,000-unit project (SQLite), so a few tabs, or a
    script holding sockets open, kept the database busy."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, batch = tiles_app
    units = list(batch.workunits.order_by("seq"))
    first = client.get("/projects/squares/progress/").content.decode()
    assert '<dd id="pj-completed">0</dd>' in first
    client.get("/projects/squares/contributors/")
    complete(units[0], tile_output(units[0]))
    with CaptureQueriesContext(connection) as burst:
        for _ in range(20):
            assert client.get("/projects/squares/progress/").status_code == 200
            assert client.get("/projects/squares/contributors/").status_code == 200
    assert _counting(burst.captured_queries) == 0
    # A second later the next viewer counts again (live.js asks once more after a change).
    monkeypatch.setattr(project_pages, "LIVE_FRESH_S", 0)
    html = client.get("/projects/squares/progress/").content.decode()
    assert '<dd id="pj-completed">1</dd>' in html
    # While one request counts, the others get the value before it instead of counting too.
    complete(units[1], tile_output(units[1]))
    from django.core.cache import cache
    project_id = project.pk
    cache.add(f"web:project-live:{project_id}:progress:busy", 1, 30)
    with CaptureQueriesContext(connection) as waiting:
        html = client.get("/projects/squares/progress/").content.decode()
    assert '<dd id="pj-completed">1</dd>' in html and _counting(waiting.captured_queries) == 0
    cache.delete(f"web:project-live:{project_id}:progress:busy")
    assert '<dd id="pj-completed">2</dd>' in client.get(
        "/projects/squares/progress/").content.decode()
