"""Owners in the admin: scoped to their projects, volunteers kept out, and the whole workflow
(validators, wheels, wasm, CSV and large uploads with progress, batch life cycle)."""

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from sparecycles.owners import admin as project_admin
from sparecycles.projects.models import App, AppVersion, Batch, Project, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    project_owner_add,
)
from sparecycles.scheduler.models import Replica

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
QUORUM = {"min_quorum": 1, "target_nresults": 1, "max_error_results": 3,
          "max_total_results": 6, "max_success_results": 4, "delay_bound": 600}


@pytest.fixture
def owner_admin(owner, project, client):
    """The owner, made an owner the way the site does it: staff in the owners group."""
    project_owner_add(project=project, user=owner)
    client.force_login(owner)
    return client


@pytest.fixture
def rival_batch(db):
    user = get_user_model().objects.create_user("rival", password="pw-rival-123")
    project = Project.objects.create(slug="rival", title="Rival project")
    project_owner_add(project=project, user=user)
    app = App.objects.create(project=project, name="rivalapp", title="Rival app")
    version = app_version_create(app=app, code=b"def main(input):\n    return 1\n")
    return batch_create(app_version=version, name="rival batch", inputs=[{"n": 1}],
                        quorum=QuorumParams())


def test_owners_group_is_enough_to_work_in_the_admin(owner_admin):
    page = owner_admin.get("/admin/").content.decode()
    for model in ["Projects", "Apps", "App versions", "Batches", "Work units"]:
        assert model in page
    assert "Replicas" not in page and "Devices" not in page   # not their business


def test_a_volunteer_never_reaches_the_admin(client, volunteer_user_factory):
    volunteer = volunteer_user_factory()
    response = client.post("/admin/login/?next=/admin/",
                           {"username": volunteer.username, "password": "pw-vera-12345"})
    assert response.status_code == 200   # the login form again, with an error
    assert "correct username and password for a staff account" in response.content.decode()
    client.force_login(volunteer)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/projects/batch/").status_code == 302


@pytest.fixture
def volunteer_user_factory(db):
    def make():
        return get_user_model().objects.create_user("vera", password="pw-vera-12345")
    return make


@pytest.mark.parametrize("url", [
    "/admin/projects/project/{project}/change/",
    "/admin/projects/app/{app}/change/",
    "/admin/projects/appversion/{version}/change/",
    "/admin/projects/batch/{batch}/change/",
    "/admin/projects/workunit/{workunit}/change/",
])
def test_another_owners_objects_are_not_found(owner_admin, rival_batch, url):
    ids = {"project": rival_batch.app_version.app.project.pk,
           "app": rival_batch.app_version.app.pk, "version": rival_batch.app_version.pk,
           "batch": rival_batch.pk, "workunit": rival_batch.workunits.get().pk}
    response = owner_admin.get(url.format(**ids))
    assert response.status_code == 302   # "doesn't exist. Perhaps it was deleted?"


def test_lists_and_filters_do_not_leak_names(owner_admin, rival_batch, make_batch):
    make_batch(count=1)
    for url in ["/admin/projects/project/", "/admin/projects/app/",
                "/admin/projects/appversion/", "/admin/projects/batch/",
                "/admin/projects/workunit/"]:
        page = owner_admin.get(url).content.decode()
        assert "rival" not in page.lower(), url


def test_another_owners_batch_cannot_be_changed(owner_admin, rival_batch):
    url = f"/admin/projects/batch/{rival_batch.pk}/lifecycle/abort/"
    assert owner_admin.post(url).status_code == 404
    response = owner_admin.post("/admin/projects/batch/", {
        "action": "abort_batches", "_selected_action": [rival_batch.pk]})
    assert response.status_code in (200, 302)
    rival_batch.refresh_from_db()
    assert rival_batch.state == Batch.State.OPEN
    assert owner_admin.post(f"/admin/projects/batch/{rival_batch.pk}/change/",
                            {"name": "mine"}).status_code == 302
    rival_batch.refresh_from_db()
    assert rival_batch.name == "rival batch"


def test_choices_offer_only_my_projects_and_versions(owner_admin, rival_batch, app_version):
    page = owner_admin.get("/admin/projects/batch/add/").content.decode()
    assert "square v1" in page and "rivalapp" not in page
    page = owner_admin.get("/admin/projects/app/add/").content.decode()
    assert "Squares" in page and "Rival project" not in page
    response = owner_admin.post("/admin/projects/batch/add/", {
        "app_version": rival_batch.app_version.pk, "name": "steal",
        "inputs_file": SimpleUploadedFile("in.jsonl", b'{"n": 1}\n'), **QUORUM})
    assert response.status_code == 200   # "Select a valid choice"
    assert Batch.objects.count() == 1


def test_an_owner_creating_a_project_owns_it_and_cannot_pick_owners(owner_admin, owner):
    page = owner_admin.get("/admin/projects/project/add/").content.decode()
    assert 'name="owners"' not in page
    response = owner_admin.post("/admin/projects/project/add/", {
        "title": "Second", "slug": "second", "description": "", "is_public": "on"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(Project.objects.get(slug="second").owners.all()) == [owner]


def test_validator_settings_are_checked(owner_admin, app):
    data = {"title": "Squares", "description": "", "validator": "tolerance",
            "validator_options": '{"abs_tol": -1}', "validate_code": "",
            "adaptive_threshold": 10, "spot_check_rate": 0, "credibility_threshold": 0.99,
            "min_memory_mb": 0,
            "allow_mobile": "on", "output_view": "", "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0}
    response = owner_admin.post(f"/admin/projects/app/{app.pk}/change/", data)
    assert response.status_code == 200
    assert "abs_tol must be a number of at least 0" in response.content.decode()
    data["validator_options"] = '{"abs_tol": 0.001}'
    response = owner_admin.post(f"/admin/projects/app/{app.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    app.refresh_from_db()
    assert app.validator == "tolerance" and app.validator_options == {"abs_tol": 0.001}


def wheel_bytes(name="sc_helper", version="1.0") -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "def double(x):\n    return 2 * x\n")
        archive.writestr(f"{name}-{version}.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


def test_upload_a_version_with_wheels(owner_admin, app):
    filename, wheel = wheel_bytes()
    response = owner_admin.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "pyodide", "entry": "main", "flops_per_unit": "1000",
        "code_file": SimpleUploadedFile("main.py", b"import sc_helper\ndef main(input):\n"
                                                   b"    return sc_helper.double(1)\n"),
        "wheel_files": [SimpleUploadedFile(filename, wheel)],
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    version = AppVersion.objects.get(app=app)
    assert version.wheels.get().filename == filename
    assert version.packages[0].startswith(f"/apps/{app.name}/1/wheels/{filename}#sha256=")
    page = owner_admin.get(f"/admin/projects/appversion/{version.pk}/change/").content.decode()
    assert filename in page


def test_upload_a_wasm_module(owner_admin, app):
    wasm = (REPO / "workunits/mandelbrot-wasm/mandelbrot-wasm.wasm").read_bytes()
    response = owner_admin.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "wasm", "entry": "run", "flops_per_unit": "1000",
        "code_file": SimpleUploadedFile("tiles.wasm", wasm)})
    assert response.status_code == 302, response.content.decode()[:3000]
    response = owner_admin.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "wasm", "entry": "run", "flops_per_unit": "1000",
        "code_file": SimpleUploadedFile("empty.wasm", b"\0asm\x01\0\0\0")})
    assert response.status_code == 200
    assert "must export memory" in response.content.decode()
    assert AppVersion.objects.filter(app=app).count() == 1


def test_csv_upload_in_the_admin(owner_admin, app_version):
    response = owner_admin.post("/admin/projects/batch/add/", {
        "app_version": app_version.pk, "name": "from csv",
        "inputs_file": SimpleUploadedFile("in.csv", b"n,note\n1,hello\n2,\"[1,2]\"\n"),
        **QUORUM})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [w.input for w in WorkUnit.objects.order_by("seq")] == [
        {"n": 1, "note": "hello"}, {"n": 2, "note": [1, 2]}]


def test_malformed_csv_names_lines_and_creates_nothing(owner_admin, app_version):
    response = owner_admin.post("/admin/projects/batch/add/", {
        "app_version": app_version.pk, "name": "bad csv",
        "inputs_file": SimpleUploadedFile("in.csv", b"n,note\n1\n2,b\n3,c,d\n"), **QUORUM})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Line 2: 1 values, but the header names 2 fields" in page
    assert "Line 4: 3 values" in page
    assert not Batch.objects.exists()


def test_batch_page_shows_progress_failures_and_life_cycle(owner_admin, make_batch):
    batch = make_batch(count=2)
    WorkUnit.objects.filter(seq=2).update(state=WorkUnit.State.FAILED,
                                          error_reason="Too many errors: 3 replicas failed")
    page = owner_admin.get(f"/admin/projects/batch/{batch.pk}/change/").content.decode()
    assert "0 of 2 completed, 1 failed" in page
    assert "Too many errors: 3 replicas failed" in page
    assert f"/admin/projects/batch/{batch.pk}/results.jsonl" in page
    for action in ["Pause", "Abort", "Retire"]:
        assert f">{action}</button>" in page

    response = owner_admin.post(f"/admin/projects/batch/{batch.pk}/lifecycle/pause/")
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == Batch.State.PAUSED
    owner_admin.post("/admin/projects/batch/", {"action": "abort_batches",
                                                "_selected_action": [batch.pk]})
    batch.refresh_from_db()
    assert batch.state == Batch.State.ABORTED
    assert WorkUnit.objects.get(seq=1).state == WorkUnit.State.CANCELLED
    assert not Replica.objects.filter(workunit__seq=1, server_state="unsent").exists()
    response = owner_admin.post(f"/admin/projects/batch/{batch.pk}/lifecycle/resume/",
                                follow=True)
    assert "it can&#x27;t be resumed" in response.content.decode()


def test_state_is_not_editable_by_hand(owner_admin, make_batch):
    batch = make_batch(count=1)
    owner_admin.post(f"/admin/projects/batch/{batch.pk}/change/",
                     {"name": "renamed", "state": "retired"})
    batch.refresh_from_db()
    assert batch.name == "renamed" and batch.state == Batch.State.OPEN


@pytest.mark.django_db(transaction=True)
def test_large_upload_runs_in_the_background_with_progress(owner, project, client, monkeypatch,
                                                           app_version):
    project_owner_add(project=project, user=owner)
    client.force_login(owner)
    monkeypatch.setattr(project_admin, "SYNC_MAX_UNITS", 10)
    lines = b"".join(b'{"n": %d}\n' % n for n in range(2500))
    response = client.post("/admin/projects/batch/add/", {
        "app_version": app_version.pk, "name": "big",
        "inputs_file": SimpleUploadedFile("big.jsonl", lines), **QUORUM})
    assert response.status_code == 302
    progress_url = response["Location"]
    assert "/admin/projects/batch/upload/" in progress_url
    page = client.get(progress_url).content.decode()
    assert 'id="upload-progress"' in page and "projects/upload-progress.js" in page
    deadline = time.monotonic() + 60
    while True:
        status = client.get(progress_url + "status").json()
        if status["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == 2500
    assert status["batch_url"] == f"/admin/projects/batch/{status['batch_id']}/change/"
    assert Batch.objects.get(pk=status["batch_id"]).workunits.count() == 2500
    # Another account can't follow this upload.
    other = get_user_model().objects.create_superuser("root2", "r@example.org", "pw-r-12345")
    client.force_login(get_user_model().objects.create_user("x", password="pw-x-123456",
                                                            is_staff=True))
    assert client.get(progress_url + "status").status_code in (302, 404)
    client.force_login(other)
    assert client.get(progress_url + "status").status_code == 200


def test_progress_of_an_unknown_upload_is_404(owner_admin):
    assert owner_admin.get("/admin/projects/batch/upload/nope/status").status_code == 404
    assert json.loads(owner_admin.get("/admin/projects/batch/upload/nope/status").content) == {
        "detail": "No such upload.", "code": "not_found"}  # the one error shape (errors.py)
