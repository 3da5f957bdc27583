"""api/apis/batches.py and versions.py: the batch detail explains where a batch is (the
scheduler's batch_status, one read model for admin, API and CLI) and warns of defaults."""

import pytest

from sparecycles.projects.models import Batch
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect

from .conftest import compute

pytestmark = pytest.mark.django_db


def submit(api, **fields):
    response = api.post("/api/v1/batches/", {"app": "square", "name": "two",
                                             "inputs": [{"n": 1}, {"n": 2}], **fields},
                        format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_stalled_batch_says_why(api, app_version):
    batch = submit(api, min_quorum=1, target_nresults=1)
    device = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
    sent = tasks_dispatch(device=device, slots=2).replicas
    replica_report(device=device, task_id=sent[0].task_id, ok=False, error="MemoryError")
    status = api.get(f"/api/v1/batches/{batch['id']}/").json()["status"]
    assert status["state"] == "open"
    assert status["waiting"] == {"validation_error": 0, "in_progress": 1, "after_error": 1,
                                 "quorum": 0, "unsent": 0}
    texts = {row["code"]: row["text"] for row in status["explanations"]}
    assert texts["after_error"].startswith("1 work unit waits for a different volunteer")
    assert texts["in_progress"] == "1 work unit is being computed by a volunteer now."
    assert status["warnings"] == []  # the fixture's version declares its workload


def test_a_finished_batch_reads_completed(api, app_version):
    batch = submit(api, min_quorum=1, target_nresults=1)
    compute(Batch.objects.get(pk=batch["id"]))
    detail = api.get(f"/api/v1/batches/{batch['id']}/").json()
    assert detail["state"] == "open"  # what the owner set: they may still pause or retire it
    assert detail["status"]["state"] == "completed"
    assert detail["status"]["explanations"] == [{
        "code": "completed", "count": 2,
        "text": "Completed: all 2 work units have a validated result."}]


def test_the_default_workload_is_warned_about_on_the_version_and_the_batch(api, app):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.post("/api/v1/apps/square/versions/", {
        "code": SimpleUploadedFile("main.py", b"def main(input):\n    return input\n")},
        format="multipart")
    assert response.status_code == 201, response.content
    [warning] = response.json()["warnings"]
    assert warning["code"] == "default_workload"
    assert "default workload (1e9 operations per work unit)" in warning["text"]
    batch = submit(api)
    assert api.get(f"/api/v1/batches/{batch['id']}/").json()["status"]["warnings"] == [warning]
    declared = api.post("/api/v1/apps/square/versions/", {
        "code": SimpleUploadedFile("main.py", b"def main(input):\n    return input\n"),
        "flops_per_unit": "5e6"}, format="multipart")
    assert declared.json()["warnings"] == []
