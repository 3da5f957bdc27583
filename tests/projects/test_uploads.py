"""Large admin uploads are durable background jobs: under `serve --workers 2` a progress poll
on any worker sees the job, and a worker killed mid-insert leaves no half-made batch."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
from django.db import connection
from django.test import Client

from sparecycles.jobs.models import BackgroundJob
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import project_owner_add
from tests.live_server import REPO, database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
QUORUM = {"min_quorum": 1, "target_nresults": 1, "max_error_results": 3,
          "max_total_results": 6, "max_success_results": 4, "delay_bound": 600}


def redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def serve(tmp_path: Path):
    """`manage.py serve --workers 2` on the test database (several workers need Redis)."""
    if not redis_up():
        pytest.skip("serve --workers 2 needs Redis")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": f"test-uploads-{uuid.uuid4().hex[:8]}",
                "ALLOWED_HOSTS": "127.0.0.1", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO / "platform")})
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--workers", "2", "--port", str(port),
         "--no-housekeeping", "--no-validator"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail((tmp_path / "serve.log").read_text()[-4000:])
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def owner_session(owner, project, url: str) -> requests.Session:
    project_owner_add(project=project, user=owner)
    client = Client()
    client.force_login(owner)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def upload(session: requests.Session, url: str, app_version, name: str, lines: int) -> str:
    form = session.get(f"{url}/admin/projects/batch/add/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    data = b"".join(b'{"n": %d}\n' % n for n in range(lines))
    response = session.post(f"{url}/admin/projects/batch/add/", timeout=120,
                            data={"csrfmiddlewaretoken": token, "app_version": app_version.pk,
                                  "name": name, **QUORUM},
                            files={"inputs_file": (f"{name}.jsonl", data)},
                            headers={"Referer": f"{url}/admin/projects/batch/add/"},
                            allow_redirects=False)
    assert response.status_code == 302, response.text[-2000:]
    assert "/admin/projects/batch/upload/" in response.headers["Location"]
    return url + response.headers["Location"]


def test_progress_polls_on_any_worker_follow_the_job(serve, owner, project, app_version):
    session = owner_session(owner, project, serve)
    progress_url = upload(session, serve, app_version, "big", 20_000)
    # A fresh connection per poll (no keep-alive): the kernel hands each to either worker.
    seen, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        response = requests.get(progress_url + "status", cookies=session.cookies, timeout=30)
        assert response.status_code == 200, response.text   # never "not found"
        status = response.json()
        seen.append(status["state"])
        if status["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == 20_000
    assert Batch.objects.get(pk=status["batch_id"]).workunits.count() == 20_000
    # The finished job stays readable on every worker.
    for _ in range(10):
        again = requests.get(progress_url + "status", cookies=session.cookies, timeout=30)
        assert again.status_code == 200 and again.json()["state"] == "done"
    page = requests.get(progress_url, cookies=session.cookies, timeout=30)
    assert page.status_code == 200 and 'id="upload-progress"' in page.text


def test_a_worker_killed_mid_upload_leaves_no_half_made_batch(serve, owner, project,
                                                               app_version):
    session = owner_session(owner, project, serve)
    progress_url = upload(session, serve, app_version, "doomed", 150_000)
    job_id = progress_url.rstrip("/").rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = BackgroundJob.objects.get(pk=job_id)
        if job.state != BackgroundJob.State.QUEUED:
            break
        time.sleep(0.05)
    if job.state == BackgroundJob.State.RUNNING:
        os.kill(int(job.holder.rsplit(":", 1)[1]), signal.SIGKILL)   # the inserting worker
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = requests.get(progress_url + "status", cookies=session.cookies, timeout=30)
        if response.status_code == 200 and response.json()["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    status = response.json()
    batches = Batch.objects.filter(name="doomed")
    if status["state"] == "done":   # it finished before the kill landed: whole
        assert batches.get().workunits.count() == 150_000
    else:                           # clearly failed, and nothing was made
        assert status["state"] == "failed" and "stopped before it finished" in status["errors"][0]
        assert not batches.exists() and not WorkUnit.objects.exists()
        assert not Path(BackgroundJob.objects.get(pk=job_id).payload["path"]).exists()
