"""Names and descriptions lose their control characters by every path that saves them:
the cleaning functions, model saves, services, the volunteer's forms, the owners' API and
the admin (text.py)."""

import pytest
from django.contrib.auth import get_user_model

from sparecycles.accounts.services import account_create, volunteer_update
from sparecycles.projects.models import Batch, Project
from sparecycles.projects.services import app_update, project_create, project_update
from sparecycles.text import clean_line, clean_text
from sparecycles.volunteers.models import Device, Team, Volunteer
from sparecycles.volunteers.services import team_create, team_update
from tests.api.conftest import token_client

BELL, SOH, DEL, C1, NUL = "\x07", "\x01", "\x7f", "\x85", "\x00"


# --- the functions --------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "clean"), [
    (f"Ada{BELL} Love{SOH}lace", "Ada Lovelace"),
    (f"  tab\there\nnew{C1}line\r\n ", "tab here new line"),
    (f"{NUL}{DEL}\x1b[31mred\x9b", "[31mred"),            # ANSI escapes lose their ESC/CSI
    ("lone \ud800 surrogate \ufffe\uffff", "lone surrogate"),
    ("émoji 🧪 and 👩‍🔬 (ZWJ kept) < & > \" '", "émoji 🧪 and 👩‍🔬 (ZWJ kept) < & > \" '"),
    (BELL * 5, ""),
    ("", ""),
])
def test_clean_line(raw, clean):
    assert clean_line(raw) == clean


def test_clean_text_keeps_line_breaks_and_tabs_but_no_other_control():
    assert clean_text(f"First{BELL} line\r\n\tindented{SOH}\rthird{DEL}{C1}  \n\n") == (
        "First line\n\tindented\nthird")
    assert clean_text("") == ""


def test_every_character_left_is_allowed_in_xml_1_0():
    raw = "".join(chr(c) for c in range(0, 0x250)) + "\ud800\udfff\ufffe\uffff"
    for cleaned in (clean_line(raw), clean_text(raw)):
        for char in cleaned:
            code = ord(char)
            assert code in (0x9, 0xA) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD \
                or code >= 0x10000, hex(code)
            assert not 0x7F <= code <= 0x9F, hex(code)


# --- models and services ------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_saves_clean_names_and_descriptions(app):
    volunteer = Volunteer.objects.create(name=f"Eve{BELL}")
    team = Team.objects.create(name=f"The{SOH} Team", slug="the-team",
                               description=f"We{BELL} compute.\r\nTogether.")
    device = Device.objects.create(volunteer=volunteer, token_hash="x" * 64, name=f"pc{DEL}1")
    app.title, app.description = f"Squares{BELL}", f"About{SOH}\nsquares"
    app.save()
    for obj in (volunteer, team, device, app):
        obj.refresh_from_db()
    assert (volunteer.name, team.name, team.description, device.name) == (
        "Eve", "The Team", "We compute.\nTogether.", "pc1")
    assert (app.title, app.description) == ("Squares", "About\nsquares")


@pytest.mark.django_db
def test_services_clean_before_their_own_checks(owner, app, make_batch):
    member = account_create(username="ada", password="pw-ada-123456")
    volunteer_update(volunteer=member, name=f"\tAda{BELL}\n", show_anonymous=False)
    assert Volunteer.objects.get(pk=member.pk).name == "Ada"
    with pytest.raises(Exception, match="1 to 100"):
        volunteer_update(volunteer=member, name=BELL * 3, show_anonymous=False)
    team = team_create(founder=member, name=f"Byte{SOH}s", description=f"x{BELL}y")
    assert (team.name, team.description) == ("Bytes", "xy")
    with pytest.raises(Exception, match="2 to 100"):
        team_create(founder=member, name=f"Z{BELL}{BELL}")
    team_update(team=team, editor=member, description=f"new{NUL}\r\ntext")
    assert Team.objects.get(pk=team.pk).description == "new\ntext"
    project = project_create(slug="p2", title=f"Title{BELL}", owner=owner,
                             description=f"d{SOH}")
    project_update(project=project, title=f"Re{DEL}titled")
    app_update(app=app, description=f"app{C1} text")
    project.refresh_from_db()
    app.refresh_from_db()
    assert (project.title, project.description, app.description) == ("Retitled", "d",
                                                                     "app text")
    batch = make_batch(count=1)
    assert batch.name == "test batch"
    batch.name = f"run{BELL} 2"
    batch.save()
    assert Batch.objects.get(pk=batch.pk).name == "run 2"


@pytest.mark.django_db
def test_a_title_of_only_controls_is_blank_and_refused(owner):
    with pytest.raises(Exception, match="blank"):
        project_create(slug="p3", title=BELL * 4, owner=owner)
    assert not Project.objects.filter(slug="p3").exists()


# --- the paths: forms, API, admin ----------------------------------------------------------------
@pytest.mark.django_db
def test_volunteer_forms_store_clean_names(client):
    client.post("/accounts/signup/", {"username": "grace", "password1": "pw-grace-123456",
                                      "password2": "pw-grace-123456"})
    volunteer = Volunteer.objects.get(user__username="grace")
    client.post("/me/account/", {"name": f"Grace{BELL} Hopper{SOH}", "in_stats_exports": "on"})
    client.post("/teams/new/", {"name": f"Navy{BELL} Team", "description": f"a{SOH}b\r\nc"})
    volunteer.refresh_from_db()
    assert volunteer.name == "Grace Hopper"
    team = Team.objects.get()
    assert (team.name, team.description) == ("Navy Team", "ab\nc")
    client.post(f"/teams/{team.slug}/edit/", {"description": f"edited{BELL}"})
    assert Team.objects.get().description == "edited"


@pytest.mark.django_db
def test_owners_api_stores_clean_titles_and_descriptions(owner, project, app):
    api = token_client(owner)
    response = api.patch(f"/api/v1/projects/{project.slug}/",
                         {"title": f"Squares{BELL}!", "description": f"All{SOH} squares\r\n"},
                         format="json")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Squares!"
    response = api.patch(f"/api/v1/apps/{app.name}/", {"title": f"Sq{DEL}uare",
                                                       "description": f"d{C1}"},
                         format="json")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    app.refresh_from_db()
    assert (project.title, project.description, app.title, app.description) == (
        "Squares!", "All squares", "Square", "d")


@pytest.mark.django_db
def test_admin_stores_clean_names(client, owner, project):
    root = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-123")
    client.force_login(root)
    volunteer = Volunteer.objects.create(name="Ada")
    response = client.post(f"/admin/volunteers/volunteer/{volunteer.pk}/change/", {
        "name": f"Ada{BELL}{SOH} L.", "reputation": "0.5", "cross_project_id": "a" * 32,
        "in_stats_exports": "on",
        "devices-TOTAL_FORMS": "0", "devices-INITIAL_FORMS": "0",
        "devices-MIN_NUM_FORMS": "0", "devices-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 302, response.content.decode()[:3000]
    after = Volunteer.objects.get(pk=volunteer.pk)
    assert after.name == "Ada L."
    assert after.cross_project_id == volunteer.cross_project_id != "a" * 32  # read-only
    response = client.post(f"/admin/projects/project/{project.pk}/change/", {
        "title": f"Squares{BELL}", "description": f"x{SOH}y", "is_public": "on",
        "owners": [owner.pk]})
    assert response.status_code == 302, response.content.decode()[:3000]
    project.refresh_from_db()
    assert (project.title, project.description) == ("Squares", "xy")
