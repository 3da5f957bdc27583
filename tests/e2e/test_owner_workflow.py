"""The owner's whole workflow in real Chromium against a real daphne.

An owner logs into the admin, creates an app, uploads main.py with a pure-Python wheel it
imports, and creates a batch from a JSONL file; a volunteer's page (another browser
context) computes the work in Pyodide, installing the wheel from our URL; the owner then
downloads the validated results through the REST API and through the CLI.
"""

import io
import json
import re
import time
import urllib.request
import zipfile

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from sparecycles.cli.main import main as cli_main
from sparecycles.projects.models import Batch, Project, WorkUnit
from sparecycles.projects.services import project_owner_add
from sparecycles.scheduler.models import Replica

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT_S = 120
PASSWORD = "pw-owner-e2e-123"
MAIN_PY = b'''"""Squares and cubes, with help from a wheel served by the platform."""

import sc_powers


def main(input):
    n = input["n"]
    return {"n": n, "square": sc_powers.power(n, 2), "cube": sc_powers.power(n, 3),
            "helper": sc_powers.__version__}
'''
INPUTS = [{"n": n} for n in range(1, 6)]


def powers_wheel() -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("sc_powers/__init__.py",
                         '__version__ = "1.2"\n\n\ndef power(x, k):\n    return x ** k\n')
        archive.writestr("sc_powers-1.2.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: sc-powers\nVersion: 1.2\n")
        archive.writestr("sc_powers-1.2.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n")
        archive.writestr("sc_powers-1.2.dist-info/RECORD", "")
    return "sc_powers-1.2-py3-none-any.whl", buffer.getvalue()


def admin_login(page: Page, server, username: str) -> None:
    page.goto(f"{server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()


def saved(page: Page) -> None:
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()


def http_json(url: str, *, data: dict | None = None, token: str = "") -> dict:
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data else None,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Token {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read())


def test_owner_uploads_volunteer_computes_owner_downloads(live_daphne, page, browser, tmp_path,
                                                          capsys):
    owner = get_user_model().objects.create_user("olga", "olga@example.org", PASSWORD)
    project = Project.objects.create(slug="powers", title="Powers",
                                     description="Squares and cubes.")
    project_owner_add(project=project, user=owner)

    # --- the owner, in the admin -------------------------------------------------------
    admin_login(page, live_daphne, "olga")
    page.goto(f"{live_daphne.url}/admin/projects/app/add/")
    page.select_option("#id_project", label="Powers")
    page.fill("#id_name", "powers")
    page.fill("#id_title", "Powers of n")
    saved(page)

    wheel_name, wheel = powers_wheel()
    page.goto(f"{live_daphne.url}/admin/projects/appversion/add/")
    page.select_option("#id_app", label="powers")
    page.select_option("#id_runtime", "pyodide")
    page.fill("#id_entry", "main")
    page.set_input_files("#id_code_file", files=[
        {"name": "main.py", "mimeType": "text/x-python", "buffer": MAIN_PY}])
    page.set_input_files("#id_wheel_files", files=[
        {"name": wheel_name, "mimeType": "application/zip", "buffer": wheel}])
    saved(page)

    page.goto(f"{live_daphne.url}/admin/projects/batch/add/")
    page.select_option("#id_app_version", label="powers v1")
    page.fill("#id_name", "first powers")
    jsonl = "".join(json.dumps(value) + "\n" for value in INPUTS).encode()
    page.set_input_files("#id_inputs_file", files=[
        {"name": "inputs.jsonl", "mimeType": "application/jsonl", "buffer": jsonl}])
    page.fill("#id_min_quorum", "1")
    page.fill("#id_target_nresults", "1")
    saved(page)
    expect(page.locator(".messagelist")).to_contain_text("Created 5 work units.")
    batch = Batch.objects.get(name="first powers")
    assert batch.created_by == owner

    # --- a volunteer, in another browser context (no admin session) --------------------
    volunteer = browser.new_context()
    try:
        volunteer_page = volunteer.new_page()
        volunteer_page.goto(f"{live_daphne.url}/")
        start = volunteer_page.get_by_role("button", name="Start")
        expect(start).to_be_enabled()
        start.click()
        deadline = time.monotonic() + TIMEOUT_S
        while WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.COMPLETED).count() < 5:
            errors = list(Replica.objects.filter(workunit__batch=batch).exclude(error_message="")
                          .values_list("error_message", flat=True))
            assert not errors, f"the volunteer's tasks failed: {errors}"
            assert time.monotonic() < deadline, "the volunteer did not finish the batch"
            time.sleep(0.25)
    finally:
        volunteer.close()
    log = live_daphne.log_path.read_text()
    assert f'"GET /apps/powers/1/wheels/{wheel_name}" 200' in log   # from our own URL

    # The admin shows the finished batch.
    page.goto(f"{live_daphne.url}/admin/projects/batch/{batch.pk}/change/")
    expect(page.locator("#batch-counts")).to_contain_text("5 of 5 completed, 0 failed")
    expect(page.locator("#batch-state")).to_have_text("Completed")

    expected = [{"seq": i + 1, "input": value,
                 "output": {"n": value["n"], "square": value["n"] ** 2,
                            "cube": value["n"] ** 3, "helper": "1.2"},
                 "revalidated": False}   # nobody's result was thrown out and derived again
                for i, value in enumerate(INPUTS)]

    # --- the owner, through the REST API -----------------------------------------------
    token = http_json(f"{live_daphne.url}/api/v1/auth/token/",
                      data={"username": "olga", "password": PASSWORD})["token"]
    status = http_json(f"{live_daphne.url}/api/v1/batches/{batch.pk}/", token=token)
    assert status["counts"]["completed"] == 5 and status["counts"]["fraction_done"] == 1.0
    request = urllib.request.Request(f"{live_daphne.url}/api/v1/batches/{batch.pk}/results.jsonl",
                                     headers={"Authorization": f"Token {token}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as response:
        assert response.headers["Content-Type"] == "application/jsonl"
        via_api = [json.loads(line) for line in response.read().splitlines()]
    assert via_api == expected

    # --- the owner, through the CLI ----------------------------------------------------
    target = tmp_path / "results.jsonl"
    code = cli_main(["--url", live_daphne.url, "--token", token, "results", str(batch.pk),
                     "--format", "jsonl", "-o", str(target)])
    assert code == 0
    assert [json.loads(line) for line in target.read_text().splitlines()] == expected
    csv_target = tmp_path / "results.csv"
    assert cli_main(["--url", live_daphne.url, "--token", token, "results", str(batch.pk),
                     "--format", "csv", "-o", str(csv_target)]) == 0
    assert csv_target.read_text().splitlines()[0] == (
        "seq,input.n,output.cube,output.helper,output.n,output.square,revalidated")
    assert cli_main(["--url", live_daphne.url, "--token", token, "watch", str(batch.pk)]) == 0
    assert "Finished: 5 completed, 0 failed, 0 cancelled." in capsys.readouterr().out


def test_a_malformed_upload_in_the_admin_names_the_lines(live_daphne, page):
    owner = get_user_model().objects.create_user("olga", "olga@example.org", PASSWORD)
    project = Project.objects.create(slug="powers", title="Powers")
    project_owner_add(project=project, user=owner)
    from sparecycles.projects.models import App
    from sparecycles.projects.services import app_version_create

    app = App.objects.create(project=project, name="powers", title="Powers")
    app_version_create(app=app, code=b"def main(input):\n    return input\n")
    admin_login(page, live_daphne, "olga")
    page.goto(f"{live_daphne.url}/admin/projects/batch/add/")
    page.select_option("#id_app_version", label="powers v1")
    page.fill("#id_name", "broken")
    page.fill("#id_delay_bound", "900")
    page.set_input_files("#id_inputs_file", files=[
        {"name": "inputs.csv", "mimeType": "text/csv", "buffer": b"n,m\n1,2\n3\n4,5,6\n"}])
    page.locator("input[name=_save]").click()
    errors = page.locator(".errorlist")
    expect(errors).to_contain_text("Line 3: 1 values, but the header names 2 fields")
    expect(errors).to_contain_text("Line 4: 3 values")
    # Everything but the file (which no browser lets a page fill in) is kept, and said so.
    expect(page.locator("#id_name")).to_have_value("broken")
    expect(page.locator("#id_app_version option:checked")).to_have_text("powers v1")
    expect(page.locator("#id_delay_bound")).to_have_value("900")
    expect(errors).to_contain_text("choose the corrected file again")
    assert not Batch.objects.exists()


def test_a_large_upload_shows_its_progress_and_lands_whole(live_daphne, page):
    owner = get_user_model().objects.create_user("olga", "olga@example.org", PASSWORD)
    project = Project.objects.create(slug="powers", title="Powers")
    project_owner_add(project=project, user=owner)
    from sparecycles.projects.models import App
    from sparecycles.projects.services import app_version_create

    app = App.objects.create(project=project, name="powers", title="Powers")
    app_version_create(app=app, code=b"def main(input):\n    return input\n")
    admin_login(page, live_daphne, "olga")
    page.goto(f"{live_daphne.url}/admin/projects/batch/add/")
    page.select_option("#id_app_version", label="powers v1")
    page.fill("#id_name", "twenty thousand")
    lines = "".join(f'{{"n": {n}}}\n' for n in range(20_000)).encode()
    page.set_input_files("#id_inputs_file", files=[
        {"name": "big.jsonl", "mimeType": "application/jsonl", "buffer": lines}])
    page.locator("input[name=_save]").click()
    expect(page).to_have_url(re.compile(r"/admin/projects/batch/upload/[0-9a-f]+/$"))
    expect(page.locator("#upload-text")).to_contain_text("Done: 20,000 work units created",
                                                         timeout=60_000)
    page.locator("#upload-batch-link").click()
    expect(page.locator("#batch-counts")).to_contain_text("0 of 20000 completed")
    batch = Batch.objects.get(name="twenty thousand")
    assert batch.workunits.count() == 20_000 and batch.created_by == owner
