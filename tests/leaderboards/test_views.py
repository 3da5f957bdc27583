"""Leaderboard pages and their JSON: order, pagination, the viewer's own row."""

import pytest

from sparecycles.credit.models import VolunteerProjectCredit
from sparecycles.volunteers.models import Team
from sparecycles.volunteers.selectors import SESSION_VOLUNTEER_KEY

pytestmark = pytest.mark.django_db

ROW_KEYS = {"rank", "id", "name", "credit", "credit_text", "rac", "rac_text", "team", "members",
            "url", "you"}


@pytest.fixture
def hundred_and_twenty(make_volunteer):
    """Volunteers 1..120 with credit 1..120 (so "Vol 120" is first), RAC the other way
    round, and one without credit who is on no board."""
    made = [make_volunteer(f"Vol {i}", credit=i, rac=121 - i) for i in range(1, 121)]
    make_volunteer("Idle")
    return made


def names(data):
    return [row["name"] for row in data["rows"]]


def test_volunteers_by_credit_first_page(client, hundred_and_twenty):
    data = client.get("/leaderboards/volunteers/?format=json").json()
    assert (data["board"], data["order"], data["page"], data["pages"], data["total"]) == (
        "volunteers", "credit", 1, 3, 120)
    assert names(data)[:3] == ["Vol 120", "Vol 119", "Vol 118"]
    assert [row["rank"] for row in data["rows"]] == list(range(1, 51))
    assert set(data["rows"][0]) == ROW_KEYS
    assert data["rows"][0]["credit"] == 120.0
    assert data["you"] is None


def test_last_page_is_read_from_the_other_end_in_the_same_order(client, hundred_and_twenty):
    data = client.get("/leaderboards/volunteers/?page=3&format=json").json()
    assert [row["rank"] for row in data["rows"]] == list(range(101, 121))
    assert names(data) == [f"Vol {i}" for i in range(20, 0, -1)]
    middle = client.get("/leaderboards/volunteers/?page=2&format=json").json()
    assert names(middle) == [f"Vol {i}" for i in range(70, 20, -1)]


def test_by_recent_average_credit(client, hundred_and_twenty):
    data = client.get("/leaderboards/volunteers/?order=rac&format=json").json()
    assert data["order"] == "rac"
    assert names(data)[:2] == ["Vol 1", "Vol 2"]
    assert data["rows"][0]["rac"] == pytest.approx(120, rel=1e-3)


def test_ties_keep_the_earlier_volunteer_first(client, make_volunteer):
    first, second = make_volunteer("First", credit=5), make_volunteer("Second", credit=5)
    data = client.get("/leaderboards/volunteers/?format=json").json()
    assert [row["id"] for row in data["rows"]] == [first.pk, second.pk]


@pytest.mark.parametrize("query, page, order", [
    ("order=zzz&page=abc", 1, "credit"), ("page=-4", 1, "credit"), ("page=999", 3, "credit"),
    ("order=rac&page=2", 2, "rac"),
])
def test_bad_parameters_fall_back_to_something_sensible(client, hundred_and_twenty, query,
                                                        page, order):
    data = client.get(f"/leaderboards/volunteers/?{query}&format=json").json()
    assert (data["page"], data["order"]) == (page, order)


def test_json_api_paths_match_format_json(client, hundred_and_twenty, make_team):
    make_team("Sievers", credit=3)
    for page_url, api_url in [("/leaderboards/volunteers/?page=2&format=json",
                               "/leaderboards/api/volunteers?page=2"),
                              ("/leaderboards/teams/?format=json", "/leaderboards/api/teams")]:
        a, b = client.get(page_url).json(), client.get(api_url).json()
        a.pop("generated_at"), b.pop("generated_at")
        assert a == b
    response = client.get("/leaderboards/api/volunteers")
    assert response["Cache-Control"] == "no-store"


def test_html_page_shows_rows_caption_pager_and_live_config(client, hundred_and_twenty):
    response = client.get("/leaderboards/volunteers/?page=2")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Volunteers by total credit, page 2 of 3 (120 in all)" in html
    assert '<th scope="row" class="col-name"><a href="/volunteers/' in html
    assert 'rel="next"' in html and 'rel="prev"' in html
    assert 'aria-sort="descending"' in html
    config = response.context["live_config"]
    assert config == {"ws_path": "/ws/leaderboards/", "kind": "volunteers",
                      "json_url": "/leaderboards/volunteers/?order=credit&page=2&format=json"}
    assert 'id="leaderboard-config"' in html and "leaderboards/live.js" in html
    assert "<script>" not in html and "style=" not in html  # our CSP allows neither


def test_the_logged_in_viewer_row_is_highlighted(client, django_user_model, make_volunteer,
                                                 hundred_and_twenty):
    user = django_user_model.objects.create_user("ada", password="pw-ada-12345")
    me = make_volunteer("Ada", credit=119.5, user=user)
    client.force_login(user)
    data = client.get("/leaderboards/volunteers/?format=json").json()
    mine = [row for row in data["rows"] if row["you"]]
    assert [(row["id"], row["rank"]) for row in mine] == [(me.pk, 2)]
    assert data["you"] == {"id": me.pk, "name": "Ada", "rank": 2, "page": 1, "credit": 119.5,
                           "credit_text": "119.500000", "rac": 119.5, "rac_text": "119.50"}
    html = client.get("/leaderboards/volunteers/").content.decode()
    assert f'<tr id="row-{me.pk}" data-id="{me.pk}" class="is-you" aria-current="true">' in html
    assert "You are <strong>#2</strong> of 121" in html


def test_your_rank_line_links_to_your_page_when_you_are_elsewhere(client, django_user_model,
                                                                 make_volunteer,
                                                                 hundred_and_twenty):
    user = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    me = make_volunteer("Bob", credit=0.5, user=user)
    client.force_login(user)
    data = client.get("/leaderboards/volunteers/?format=json").json()
    assert data["you"]["rank"] == 121 and data["you"]["page"] == 3
    assert not any(row["you"] for row in data["rows"])
    html = client.get("/leaderboards/volunteers/").content.decode()
    assert f'href="?order=credit&amp;page=3#row-{me.pk}">show page 3</a>' in html


def test_an_anonymous_browser_is_recognised_by_its_device(client, make_device, earn,
                                                          make_batch):
    make_batch(count=1)
    session = make_device()
    earn(session.device)
    assert client.get("/leaderboards/api/volunteers").json()["you"] is None
    response = client.post("/devices/identify/", {"token": session.new_token})
    assert response.json() == {"volunteer_id": session.device.volunteer_id,
                               "device_id": session.device.public_id,
                               "device_volunteer_id": session.device.volunteer_id}
    assert client.session[SESSION_VOLUNTEER_KEY] == session.device.volunteer_id
    data = client.get("/leaderboards/api/volunteers").json()
    assert data["you"]["id"] == session.device.volunteer_id and data["rows"][0]["you"]
    # ...and the page stops asking once it knows.
    assert "data-identify" not in client.get("/leaderboards/volunteers/").content.decode()


def test_anonymous_volunteers_show_no_name_or_team(client, make_volunteer, make_team):
    team = make_team("Secret Society")
    make_volunteer("Hidden Person", credit=3, show_anonymous=True, team=team)
    make_volunteer("Open Person", credit=2, team=team)
    rows = client.get("/leaderboards/api/volunteers").json()["rows"]
    assert [(r["name"], r["team"]) for r in rows] == [("Anonymous", ""),
                                                      ("Open Person", "Secret Society")]
    assert "Hidden Person" not in client.get("/leaderboards/volunteers/").content.decode()


def test_teams_board_and_your_team(client, django_user_model, make_team, make_volunteer):
    make_team("Alpha", credit=10, member_count=3)
    beta = make_team("Beta", credit=20, rac=1, member_count=1)
    make_team("Empty")  # no credit: not on the board
    user = django_user_model.objects.create_user("cy", password="pw-cy-123456")
    make_volunteer("Cy", credit=20, user=user, team=beta)
    client.force_login(user)
    data = client.get("/leaderboards/teams/?format=json").json()
    assert [(r["name"], r["members"], r["url"], r["you"]) for r in data["rows"]] == [
        ("Beta", 1, "/teams/beta/", True), ("Alpha", 3, "/teams/alpha/", False)]
    assert data["you"]["name"] == "Beta" and data["total"] == 2
    by_rac = client.get("/leaderboards/api/teams?order=rac").json()
    assert [r["name"] for r in by_rac["rows"]] == ["Alpha", "Beta"]
    assert "3 members" in client.get("/leaderboards/teams/").content.decode()


def test_per_project_board_comes_from_real_grants(client, make_batch, make_device, earn,
                                                  project):
    make_batch(count=3)
    alice, bob = make_device().device, make_device().device
    earn(alice), earn(alice), earn(bob)
    data = client.get(f"/leaderboards/projects/{project.slug}/?format=json").json()
    assert (data["board"], data["project"]) == ("project", "squares")
    assert [(r["id"], r["credit"]) for r in data["rows"]] == [(alice.volunteer_id, 2.0),
                                                              (bob.volunteer_id, 1.0)]
    assert VolunteerProjectCredit.objects.count() == 2
    html = client.get("/leaderboards/projects/").content.decode()
    assert f'href="/leaderboards/projects/{project.slug}/"' in html and "3.00" in html
    assert client.get(f"/leaderboards/api/projects/{project.slug}").json()["total"] == 2


def test_private_or_unknown_projects_are_not_found(client, project):
    project.is_public = False
    project.save()
    assert client.get(f"/leaderboards/projects/{project.slug}/").status_code == 404
    assert client.get("/leaderboards/projects/nope/").status_code == 404


def test_empty_boards_say_how_to_get_on_them(client, db):
    html = client.get("/leaderboards/").content.decode()
    assert "No credit granted yet" in html
    assert client.get("/leaderboards/api/teams").json()["rows"] == []


def test_a_board_page_costs_a_fixed_number_of_queries(client, django_user_model,
                                                      make_volunteer, hundred_and_twenty,
                                                      django_assert_max_num_queries):
    user = django_user_model.objects.create_user("dee", password="pw-dee-123456")
    make_volunteer("Dee", credit=50, user=user)
    client.force_login(user)
    with django_assert_max_num_queries(10):
        client.get("/leaderboards/volunteers/?page=2")
    with django_assert_max_num_queries(10):
        client.get("/leaderboards/api/volunteers?order=rac&page=3")


def test_only_get(client, db):
    assert client.post("/leaderboards/volunteers/").status_code == 405


def test_teams_without_credit_are_listed_on_the_teams_page_not_the_board(client, make_team):
    make_team("Newcomers")
    assert Team.objects.count() == 1
    assert "Newcomers" in client.get("/teams/").content.decode()
    assert client.get("/leaderboards/api/teams").json()["total"] == 0


def test_new_teams_without_credit_are_listed_under_the_board(client, make_team):
    make_team("Alpha", credit=10, member_count=3)
    make_team("Fresh Start", member_count=1)
    Team.objects.create(name="No Row Yet", slug="no-row-yet")  # no totals row at all
    html = client.get("/leaderboards/teams/").content.decode()
    new = html[html.index('id="new-teams-title"'):]
    assert 'href="/teams/fresh-start/">Fresh Start</a>' in new
    assert 'href="/teams/no-row-yet/">No Row Yet</a>' in new
    assert "Alpha" not in new  # ranked above, with its credit
    assert "what its members earn while in it" in new
    assert "new-teams" not in client.get("/leaderboards/volunteers/").content.decode()
