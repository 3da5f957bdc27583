"""Every owner flow of the API: token, project, app and validator, versions (Python, wasm,
wheels), batches from JSONL, CSV and JSON, progress, results and exports, life cycle."""

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from sparecycles.projects.models import App, AppVersion, Batch, WorkUnit
from sparecycles.scheduler.models import Replica

from .conftest import compute, token_client

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
WASM = (REPO / "workunits/mandelbrot-wasm/mandelbrot-wasm.wasm").read_bytes()
SQUARE = b"def main(input):\n    return {'n': input['n'], 'square': input['n'] ** 2}\n"


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def make_wheel(name="sc_helper", version="1.0", *, pure=True, extra=None) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "def double(x):\n    return 2 * x\n")
        archive.writestr(f"{name}-{version}.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{name}-{version}.dist-info/WHEEL",
                         f"Wheel-Version: 1.0\nRoot-Is-Purelib: {'true' if pure else 'false'}\n"
                         "Tag: py3-none-any\n")
        archive.writestr(f"{name}-{version}.dist-info/RECORD", "")
        for path, data in (extra or {}).items():
            archive.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


def test_login_gets_a_token_and_logout_revokes_it(owner, project):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": "owner", "password": "pw-owner-123"},
                           format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/batches/").status_code == 200
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/batches/").status_code == 401


def test_wrong_password_is_a_clear_400(owner, project):
    response = APIClient().post("/api/v1/auth/token/", {"username": "owner", "password": "no"},
                                format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Wrong username or password."


def test_password_guessing_is_throttled(owner, project, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "API_LOGIN_RATE": "3/min"}
    client = APIClient()
    codes = [client.post("/api/v1/auth/token/", {"username": "owner", "password": "x"},
                         format="json").status_code for _ in range(4)]
    assert codes[0] == 400 and codes[-1] == 429


def test_create_project_app_with_validator_and_version(owner, project):
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    api = token_client(owner)
    response = api.post("/api/v1/projects/", {"slug": "pi", "title": "Pi", "description": "π"},
                        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["owners"] == ["owner"]
    owner.refresh_from_db()
    assert owner.is_staff and owner.groups.filter(name="Project owners").exists()

    response = api.post("/api/v1/apps/", {
        "project": "pi", "name": "pi-estimate", "title": "Pi", "validator": "tolerance",
        "validator_options": {"abs_tol": 1e-6}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["latest_version"] is None

    response = api.patch("/api/v1/apps/pi-estimate/", {"validator_options": {"abs_tol": -1}},
                         format="json")
    assert response.status_code == 400
    assert "abs_tol must be a number of at least 0" in response.json()["detail"]
    response = api.patch("/api/v1/apps/pi-estimate/", {
        "validator": "custom", "validate_code": "def equivalent(a, b):\n    return True\n"},
        format="json")
    assert response.status_code == 200 and response.json()["validator"] == "custom"

    response = api.post("/api/v1/apps/pi-estimate/versions/", {
        "code": upload("main.py", SQUARE), "flops_per_unit": "1e9"}, format="multipart")
    assert response.status_code == 201, response.content
    version = response.json()
    assert version["number"] == 1 and version["runtime"] == "pyodide"
    assert version["sha256"] == AppVersion.hash_code(SQUARE)
    assert api.get("/api/v1/apps/pi-estimate/").json()["latest_version"] == 1
    assert api.get("/api/v1/apps/pi-estimate/versions/1/").json()["code_url"] == (
        "/apps/pi-estimate/1/code")


@pytest.mark.parametrize("payload, message", [
    ({"validator": "tolerance", "validator_options": {"abs": 1}}, "Unknown tolerance options"),
    ({"validator": "custom", "validate_code": "def nope(:"}, "syntax error on line 1"),
    ({"validator": "custom", "validate_code": ""}, "needs Python code"),
    ({"validator_options": [1, 2]}, "must be a JSON object"),
])
def test_bad_validator_settings_are_refused(api, app, payload, message):
    response = api.patch(f"/api/v1/apps/{app.name}/", payload, format="json")
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    app.refresh_from_db()
    assert app.validator == "exact"


def test_app_names_are_unique_across_projects(api, rival):
    response = api.post("/api/v1/apps/", {"project": "squares", "name": "rivalapp", "title": "x"},
                        format="json")
    assert response.status_code == 400
    assert "exists already" in response.json()["detail"]


def test_code_that_cannot_run_is_refused(api, app):
    response = api.post(f"/api/v1/apps/{app.name}/versions/",
                        {"code": upload("main.py", b"def main(:\n")}, format="multipart")
    assert response.status_code == 400
    assert "syntax error on line 1" in response.json()["detail"]
    assert not app.versions.exists()


def test_wasm_version_is_checked_for_the_abi(api, app):
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": upload("tiles.wasm", WASM), "runtime": "wasm", "entry": "run"},
        format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["runtime"] == "wasm"
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": upload("empty.wasm", b"\0asm\x01\0\0\0"), "runtime": "wasm", "entry": "run"},
        format="multipart")
    assert response.status_code == 400
    assert "must export memory (memory), alloc (function), run (function)" in (
        response.json()["detail"])
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": upload("tiles.wasm", WASM), "runtime": "wasm", "entry": "compute"},
        format="multipart")
    assert response.status_code == 400 and "compute (function)" in response.json()["detail"]
    assert app.versions.count() == 1


def test_a_version_with_wheels_serves_them_with_their_hash(api, app, client):
    filename, wheel = make_wheel()
    code = b"import sc_helper\n\ndef main(input):\n    return {'d': sc_helper.double(input['n'])}\n"
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": upload("main.py", code), "wheels": [upload(filename, wheel)]}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    [entry] = body["packages"]
    assert entry.startswith(f"/apps/{app.name}/1/wheels/{filename}#sha256=")
    url, digest = entry.split("#sha256=")
    assert body["wheels"][0]["sha256"] == digest
    served = client.get(url)
    assert served.status_code == 200 and served.content == wheel
    assert served["X-Content-SHA256"] == digest and "immutable" in served["Cache-Control"]
    assert client.get(f"/apps/{app.name}/1/wheels/other-1.0-py3-none-any.whl").status_code == 404


@pytest.mark.parametrize("wheel, message", [
    (("native-1.0-cp314-cp314-linux_x86_64.whl", b"PK"), "not a pure-Python wheel"),
    (("broken-1.0-py3-none-any.whl", b"not a zip"), "not a zip archive"),
    (make_wheel("evil", extra={"../../etc/passwd": "x"}), "unsafe path"),
    (make_wheel("native", extra={"native/fast.so": "x"}), "native code"),
    (make_wheel("impure", pure=False), "Root-Is-Purelib"),
])
def test_wheels_that_a_browser_cannot_install_are_refused(api, app, wheel, message):
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": upload("main.py", SQUARE), "wheels": [upload(*wheel)]}, format="multipart")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not app.versions.exists()


def submit(api, **fields):
    return api.post("/api/v1/batches/", {"app": "square", "name": "b", **fields},
                    format="multipart" if "file" in fields else "json")


def test_submit_jsonl_then_watch_progress_and_fetch_results(api, app_version):
    lines = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(1, 6))
    response = submit(api, file=upload("in.jsonl", lines), min_quorum=1, target_nresults=1)
    assert response.status_code == 201, response.content
    batch = response.json()
    assert batch["counts"] == {"total": 5, "open": 5, "completed": 0, "failed": 0,
                               "cancelled": 0, "fraction_done": 0.0}
    assert batch["created_by"] == "owner" and batch["version"] == 1

    compute(Batch.objects.get(pk=batch["id"]), fail=(4,))
    detail = api.get(f"/api/v1/batches/{batch['id']}/").json()
    assert detail["counts"]["completed"] == 4 and detail["counts"]["failed"] == 1
    # Work unit 4 was reissued until max_error_results (3) replicas had failed.
    assert detail["status"]["replica_errors"] == [
        {"error": "ZeroDivisionError: division by zero", "count": 3}]
    assert detail["status"]["failure_reasons"][0]["reason"].startswith("Too many errors")

    page = api.get(f"/api/v1/batches/{batch['id']}/results/?page_size=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert page["results"][0] == {**page["results"][0], "seq": 1, "input": {"n": 1},
                                  "output": {"n": 1, "square": 1}}

    jsonl = api.get(f"/api/v1/batches/{batch['id']}/results.jsonl")
    assert jsonl.status_code == 200
    assert jsonl["Content-Type"] == "application/jsonl"
    rows = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3, 5]
    assert rows[-1] == {"seq": 5, "input": {"n": 5}, "output": {"n": 5, "square": 25},
                        "revalidated": False}

    exported = api.get(f"/api/v1/batches/{batch['id']}/results.csv")
    assert exported["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert table[0] == ["seq", "input.n", "output.n", "output.square", "revalidated"]
    assert table[1:] == [["1", "1", "1", "1", "false"], ["2", "2", "2", "4", "false"],
                         ["3", "3", "3", "9", "false"], ["5", "5", "5", "25", "false"]]


def test_failed_work_units_carry_their_reason(api, app_version):
    response = submit(api, inputs=[{"n": 1}, {"n": 2}], min_quorum=1, target_nresults=1,
                      max_error_results=1)
    batch_id = response.json()["id"]
    compute(Batch.objects.get(pk=batch_id), fail=(2,))
    status = api.get(f"/api/v1/batches/{batch_id}/").json()["status"]
    assert status["failed"] == 1
    assert status["failure_reasons"][0]["reason"].startswith("Too many errors")
    failed = api.get(f"/api/v1/batches/{batch_id}/workunits/?state=failed").json()["results"]
    assert [(w["seq"], w["state"]) for w in failed] == [(2, "failed")]
    assert failed[0]["error_reason"].startswith("Too many errors")


def test_submit_csv_reads_json_cells_and_keeps_text(api, app_version):
    data = b'n,label,tags\n1,first,"[1, 2]"\n2,12,"{""a"": true}"\n'
    response = submit(api, file=upload("in.csv", data))
    assert response.status_code == 201, response.content
    inputs = [w.input for w in WorkUnit.objects.order_by("seq")]
    assert inputs == [{"n": 1, "label": "first", "tags": [1, 2]},
                      {"n": 2, "label": 12, "tags": {"a": True}}]


def test_format_can_be_given_explicitly(api, app_version):
    response = submit(api, file=upload("data.txt", b"n\n7\n"), format="csv")
    assert response.status_code == 201, response.content
    assert WorkUnit.objects.get().input == {"n": 7}


@pytest.mark.parametrize("name, content, expected", [
    ("in.jsonl", b'{"n": 1}\n{"n": 2\n[3]\n{"n": NaN}\n\xff\n',
     ["Line 2: not valid JSON", "Line 3: each line must be a JSON object",
      "Line 4: NaN is not valid JSON", "Line 5: not UTF-8 text."]),
    ("in.jsonl", b'{"s": "a\\u0000b"}\n', ["Line 1: contains a NUL character"]),
    ("in.csv", b"n,label\n1,a\n2\n3,c,d\n", ["Line 3: 1 values, but the header names 2 fields",
                                            "Line 4: 3 values"]),
    ("in.csv", b"n,n\n1,2\n", ["Line 1: the header row names the input fields, but repeated"]),
    ("in.csv", b"n\n", ["holds no work units"]),
    ("in.jsonl", b"\n\n", ["holds no work units"]),
])
def test_malformed_uploads_name_each_bad_line_and_create_nothing(api, app_version, name,
                                                                 content, expected):
    response = submit(api, file=upload(name, content))
    assert response.status_code == 400
    errors = response.json()["errors"]
    for message, prefix in zip(errors, expected, strict=False):
        assert prefix in message
    assert len(errors) >= len(expected)
    assert not Batch.objects.exists() and not WorkUnit.objects.exists()
    assert not Replica.objects.exists()


def test_json_inputs_are_checked_like_lines(api, app_version):
    response = submit(api, inputs=[{"n": 1}, {"s": "\u0000"}])
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("Input 2: contains a NUL character")
    assert submit(api, inputs=[]).status_code == 400
    assert submit(api).status_code == 400   # neither file nor inputs
    assert not Batch.objects.exists()


def test_bad_quorum_is_refused(api, app_version):
    response = submit(api, inputs=[{"n": 1}], min_quorum=3, target_nresults=2)
    assert response.status_code == 400
    assert "min_quorum cannot exceed target_nresults" in response.json()["detail"]
    assert submit(api, inputs=[{"n": 1}], delay_bound=10**12).status_code == 400
    assert not Batch.objects.exists()


def test_submit_to_an_app_without_versions_says_so(api, app):
    response = submit(api, inputs=[{"n": 1}])
    assert response.status_code == 404
    assert "upload one first" in response.json()["detail"]


def test_pause_resume_abort_retire(api, app_version, make_device):
    from sparecycles.scheduler.services import tasks_dispatch

    batch_id = submit(api, inputs=[{"n": n} for n in range(4)]).json()["id"]
    device = make_device().device
    assert api.post(f"/api/v1/batches/{batch_id}/pause/").json()["state"] == "paused"
    assert tasks_dispatch(device=device, slots=2).replicas == []   # nothing goes out
    assert api.post(f"/api/v1/batches/{batch_id}/resume/").json()["state"] == "open"
    sent = tasks_dispatch(device=device, slots=2).replicas
    assert len(sent) == 2

    aborted = api.post(f"/api/v1/batches/{batch_id}/abort/").json()
    assert aborted["state"] == "aborted"
    assert aborted["counts"]["cancelled"] == 4
    assert set(Replica.objects.values_list("server_state", "outcome")) == {("over",
                                                                              "didnt_need")}
    response = api.post(f"/api/v1/batches/{batch_id}/resume/")
    assert response.status_code == 409 and "aborted" in response.json()["detail"]
    assert api.post(f"/api/v1/batches/{batch_id}/retire/").json()["state"] == "retired"
    assert api.post(f"/api/v1/batches/{batch_id}/pause/").status_code == 409
    assert api.post(f"/api/v1/batches/{batch_id}/retire/").status_code == 200   # idempotent


def test_batches_can_be_filtered(api, app_version):
    first = submit(api, inputs=[{"n": 1}]).json()["id"]
    submit(api, inputs=[{"n": 2}])
    api.post(f"/api/v1/batches/{first}/pause/")
    assert [b["id"] for b in api.get("/api/v1/batches/?state=paused").json()["results"]] == [first]
    assert api.get("/api/v1/batches/?state=nonsense").json()["results"] == []
    assert api.get("/api/v1/batches/?app=square").json()["count"] == 2


def test_a_hundred_thousand_line_upload(api, app_version, capsys):
    import time

    lines = b"".join(b'{"n": %d, "label": "unit %d"}\n' % (n, n) for n in range(100_000))
    started = time.perf_counter()
    response = submit(api, file=upload("big.jsonl", lines))
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.content[:500]
    assert response.json()["counts"]["total"] == 100_000
    assert Replica.objects.count() == 100_000
    assert WorkUnit.objects.filter(seq=100_000, input__n=99_999).exists()
    with capsys.disabled():
        print(f"\n100,000-line JSONL upload through the API: {elapsed:.1f} s")


def test_schema_is_served(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/batches/{id}/results.jsonl" in schema["paths"]


def test_api_root_lists_the_entry_points(client):
    body = client.get("/api/v1/").json()
    assert body["batches"].endswith("/api/v1/batches/")
    assert App.objects.count() == 0
