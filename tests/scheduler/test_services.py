"""Dispatch and result reporting: the scheduler's write path."""

import pytest

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import task_payload, tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db


def test_dispatch_hands_out_unsent_replicas_with_a_deadline(make_batch, make_device):
    make_batch(count=3)
    device = make_device().device
    dispatch = tasks_dispatch(device=device, slots=2)
    assert len(dispatch.replicas) == 2
    assert dispatch.retry_after_s == 0
    for replica in dispatch.replicas:
        replica.refresh_from_db()
        assert replica.server_state == Replica.ServerState.IN_PROGRESS
        assert replica.device == device
        assert replica.volunteer == device.volunteer
        assert replica.deadline > replica.sent_at


def test_dispatch_never_exceeds_max_inflight(make_batch, make_device, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_INFLIGHT": 2}
    make_batch(count=5)
    device = make_device().device
    first = tasks_dispatch(device=device, slots=5)
    assert len(first.replicas) == 2
    known = frozenset(r.task_id for r in first.replicas)
    assert tasks_dispatch(device=device, slots=5, known_task_ids=known).replicas == []


def test_empty_dispatch_says_when_to_retry(make_device):
    device = make_device().device
    dispatch = tasks_dispatch(device=device, slots=1)
    assert dispatch.replicas == []
    assert dispatch.retry_after_s > 0


def test_reconnected_device_gets_its_inflight_tasks_again(make_batch, make_device):
    make_batch(count=3)
    session = make_device()
    sent = tasks_dispatch(device=session.device, slots=1).replicas
    again = device_connect(token=session.new_token).device
    assert again.pk == session.device.pk
    resent = tasks_dispatch(device=again, slots=1).replicas
    assert [r.task_id for r in resent] == [r.task_id for r in sent]


def test_one_volunteer_never_gets_two_replicas_of_a_workunit(make_batch, owner):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    first = device_connect(token=None, user=owner).device
    second = device_connect(token=None, user=owner).device  # the same volunteer's other device
    assert first.volunteer == second.volunteer and first != second
    assert len(tasks_dispatch(device=first, slots=4).replicas) == 1
    assert tasks_dispatch(device=second, slots=4).replicas == []


def test_dispatch_respects_runtimes(make_batch, make_device):
    make_batch(count=1)
    wasm_only = make_device(runtimes=("wasm",)).device
    assert tasks_dispatch(device=wasm_only, slots=1).replicas == []


def test_task_payload_follows_the_protocol(make_batch, make_device, app_version):
    make_batch(count=1)
    replica = tasks_dispatch(device=make_device().device, slots=1).replicas[0]
    payload = task_payload(replica)
    assert payload["task_id"] == replica.task_id
    assert payload["deadline"].endswith("Z")
    assert payload["input"] == {"n": 1}
    assert payload["app"] == {
        "name": "square", "version": 1, "runtime": "pyodide",
        "code_url": "/apps/square/1/code", "sha256": app_version.sha256,
        "entry": "main", "packages": [],
    }


def test_first_success_completes_a_quorum_of_one(make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    ack = replica_report(device=device, task_id=replica.task_id, ok=True,
                         output={"n": 1, "square": 1}, elapsed_ms=5)
    assert ack.frame() == {"type": "ack", "task_id": replica.task_id, "accepted": True}
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert workunit.canonical_output == {"n": 1, "square": 1}
    replica.refresh_from_db()
    assert replica.status == "valid"
    assert replica.elapsed_ms == 5


def test_duplicate_result_changes_nothing(make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"square": 1})
    ack = replica_report(device=device, task_id=replica.task_id, ok=True, output={"square": 99})
    assert ack.accepted and ack.duplicate
    replica.refresh_from_db()
    assert replica.output == {"square": 1}
    assert WorkUnit.objects.get().canonical_output == {"square": 1}


def test_result_from_another_device_is_refused(make_batch, make_device):
    make_batch(count=1)
    mine, theirs = make_device().device, make_device().device
    replica = tasks_dispatch(device=mine, slots=1).replicas[0]
    ack = replica_report(device=theirs, task_id=replica.task_id, ok=True, output={})
    assert ack.frame()["reason"] == "not_assigned" and not ack.accepted
    replica.refresh_from_db()
    assert replica.server_state == Replica.ServerState.IN_PROGRESS


def test_unknown_task_is_refused(make_device):
    ack = replica_report(device=make_device().device, task_id="nope", ok=True, output={})
    assert (ack.accepted, ack.reason) == (False, "unknown_task")


def test_client_error_is_stored_and_the_workunit_is_reissued(make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    ack = replica_report(device=device, task_id=replica.task_id, ok=False, error="MemoryError")
    assert ack.accepted
    replica.refresh_from_db()
    assert replica.status == "error" and replica.error_message == "MemoryError"
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    assert workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).count() == 1


def test_too_many_errors_fail_the_workunit_with_a_reason(make_batch, make_device):
    make_batch(count=1, max_error_results=2)
    for _ in range(2):
        device = make_device().device
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=False, error="boom")
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.FAILED
    assert "Too many errors" in workunit.error_reason
    assert not workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).exists()


def test_task_payload_says_in_human_terms_what_the_task_is(make_batch, make_device, app):
    app.description = "Squares   numbers,\nthe classic   way. " + "x" * 400
    app.save()
    app.project.description = "ignored: the app has its own"
    app.project.save()
    make_batch(count=1)
    payload = task_payload(tasks_dispatch(device=make_device().device, slots=1).replicas[0])
    about = payload["about"]
    assert about["project"] == {"title": "Squares", "url": "/projects/squares/"}
    assert about["app"] == {"title": "Squares"}
    assert about["description"].startswith("Squares numbers, the classic way. xxx")
    assert len(about["description"]) == 240 and about["description"].endswith("…")


def test_a_private_project_s_task_names_no_page(make_batch, make_device, app):
    app.project.is_public = False
    app.project.description = "A project."
    app.project.save()
    make_batch(count=1)
    about = task_payload(tasks_dispatch(device=make_device().device, slots=1).replicas[0])["about"]
    assert about == {"project": {"title": "Squares", "url": None}, "app": {"title": "Squares"},
                     "description": "A project."}
