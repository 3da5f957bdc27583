"""A project owner works through the admin without writing code."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sparecycles.projects.models import AppVersion, Batch, WorkUnit

pytestmark = pytest.mark.django_db

QUORUM = {"min_quorum": 1, "target_nresults": 1, "max_error_results": 3,
          "max_total_results": 6, "max_success_results": 4, "delay_bound": 600}


@pytest.fixture
def staff(owner, client):
    owner.is_staff = True
    owner.save()
    from django.contrib.auth.models import Permission

    owner.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["projects", "scheduler"]))
    client.force_login(owner)
    return client


def test_owner_uploads_an_app_version(staff, app):
    code = b"def main(input):\n    return {'ok': True}\n"
    response = staff.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "pyodide", "entry": "main", "flops_per_unit": "1000",
        "code_file": SimpleUploadedFile("main.py", code),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    version = AppVersion.objects.get(app=app)
    assert bytes(version.code) == code and version.number == 1


def test_upload_with_a_syntax_error_says_so(staff, app):
    response = staff.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "pyodide", "entry": "main", "flops_per_unit": "1000",
        "code_file": SimpleUploadedFile("main.py", b"def main(:\n"),
    })
    assert response.status_code == 200
    assert "syntax error on line 1" in response.content.decode()
    assert not AppVersion.objects.exists()


def test_owner_creates_workunits_from_jsonl(staff, app_version):
    response = staff.post("/admin/projects/batch/add/", {
        "app_version": app_version.pk, "name": "first",
        "inputs_file": SimpleUploadedFile("inputs.jsonl", b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'),
        **QUORUM,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = Batch.objects.get()
    assert [wu.input for wu in batch.workunits.order_by("seq")] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert batch.created_by.username == "owner"


def test_malformed_jsonl_line_is_named_and_nothing_created(staff, app_version):
    response = staff.post("/admin/projects/batch/add/", {
        "app_version": app_version.pk, "name": "broken",
        "inputs_file": SimpleUploadedFile("inputs.jsonl", b'{"n": 1}\n{"n": 2\n'),
        **QUORUM,
    })
    assert response.status_code == 200
    assert "Line 2: not valid JSON" in response.content.decode()
    assert not Batch.objects.exists() and not WorkUnit.objects.exists()


def test_admin_lists_progress_and_replica_states(staff, make_batch):
    make_batch(count=2)
    assert "0 of 2 completed" in staff.get("/admin/projects/batch/").content.decode()
    workunit = WorkUnit.objects.first()
    page = staff.get(f"/admin/projects/workunit/{workunit.pk}/change/").content.decode()
    assert "unsent" in page


def test_owner_sees_only_their_own_projects(staff, make_batch, django_user_model):
    make_batch(count=1)
    other = django_user_model.objects.create_user("other", password="pw-other-123",
                                                  is_staff=True)
    from django.contrib.auth.models import Permission

    other.user_permissions.add(*Permission.objects.filter(content_type__app_label="projects"))
    staff.force_login(other)
    assert "test batch" not in staff.get("/admin/projects/batch/").content.decode()
    assert staff.get(f"/admin/projects/batch/{Batch.objects.get().pk}/change/").status_code == 302


def test_the_batch_page_explains_a_stall_and_refreshes_from_status(staff, make_batch,
                                                                  make_device):
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import replica_report

    batch = make_batch(count=1, min_quorum=1, target_nresults=1)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=1).replicas
    replica_report(device=device, task_id=task.task_id, ok=False, error="MemoryError")
    page = staff.get(f"/admin/projects/batch/{batch.pk}/change/").content.decode()
    assert "waits for a different volunteer" in page
    assert f'data-live-ws="/ws/batches/{batch.pk}/"' in page and "projects/live.js" in page
    status = staff.get(f"/admin/projects/batch/{batch.pk}/status/")
    assert status.status_code == 200 and "no-store" in status["Cache-Control"]
    html = status.content.decode()
    assert 'id="batch-state">Open</strong>' in html
    assert "<strong>1 replica error</strong>: MemoryError" in html
    assert "waits for a different volunteer" in html


def test_a_finished_batch_reads_completed_in_the_list_and_page(staff, make_batch, make_device):
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import replica_report

    batch = make_batch(count=1, min_quorum=1, target_nresults=1)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=1).replicas
    replica_report(device=device, task_id=task.task_id, ok=True, output={"n": 1})
    listing = staff.get("/admin/projects/batch/").content.decode()
    assert '<td class="field-state_shown">completed</td>' in listing
    html = staff.get(f"/admin/projects/batch/{batch.pk}/status/").content.decode()
    assert 'id="batch-state">Completed</strong>' in html
    assert "Completed: the work unit has a validated result." in html


def test_another_owners_batch_status_is_404(staff, make_batch, django_user_model, client):
    batch = make_batch(count=1)
    other = django_user_model.objects.create_user("other2", password="pw-other-123",
                                                  is_staff=True)
    client.force_login(other)
    assert client.get(f"/admin/projects/batch/{batch.pk}/status/").status_code in (403, 404)


def test_the_default_workload_is_warned_about_on_upload(staff, app):
    response = staff.post("/admin/projects/appversion/add/", {
        "app": app.pk, "runtime": "pyodide", "entry": "main", "flops_per_unit": "1000000000",
        "code_file": SimpleUploadedFile("main.py", b"def main(input):\n    return input\n"),
    }, follow=True)
    html = response.content.decode()
    assert "declares the default workload (1e9 operations per work unit)" in html
    version = AppVersion.objects.get(app=app)
    page = staff.get(f"/admin/projects/appversion/{version.pk}/change/").content.decode()
    assert "declares the default workload" in page


def test_results_download_from_the_admin_with_the_session(staff, make_batch, make_device):
    import csv
    import io

    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import replica_report

    batch = make_batch(count=1, min_quorum=1, target_nresults=1)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=1).replicas
    replica_report(device=device, task_id=task.task_id, ok=True, output={"n": 1, "square": 1})
    page = staff.get(f"/admin/projects/batch/{batch.pk}/change/").content.decode()
    assert f'href="/admin/projects/batch/{batch.pk}/results.csv"' in page
    response = staff.get(f"/admin/projects/batch/{batch.pk}/results.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table == [["seq", "input.n", "output.n", "output.square", "revalidated"],
                     ["1", "1", "1", "1", "false"]]
    assert staff.get(f"/admin/projects/batch/{batch.pk}/results.xml").status_code == 404
