"""The `sparecycles` command line against a live server: login, submit, watch, results,
life cycle."""

import csv
import io
import json
import os
import stat
import sys

import pytest
from django.core.cache import cache

from sparecycles.cli.main import main, progress_line
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import project_owner_add

from ..api.conftest import compute

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    cache.clear()
    monkeypatch.setenv("SPARECYCLES_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("SPARECYCLES_URL", raising=False)
    monkeypatch.delenv("SPARECYCLES_TOKEN", raising=False)


@pytest.fixture
def cli(capsys):
    def run(*args, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main([str(a) for a in args])
        finally:
            sys.stdin = sys.__stdin__
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def logged_in(cli, live_server, owner, project, app_version):
    project_owner_add(project=project, user=owner)
    code, out, err = cli("--url", live_server.url, "login", "--username", "owner",
                         "--password-stdin", stdin="pw-owner-123\n")
    assert code == 0, err
    return live_server.url


def test_login_saves_url_and_token_privately(cli, logged_in, tmp_path):
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    assert config["url"] == logged_in and len(config["token"]) == 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    code, out, _ = cli("config")
    assert code == 0 and logged_in in out and config["token"] not in out
    assert f"{config['token'][:4]}…{config['token'][-4:]}" in out


def test_wrong_password_says_so(cli, live_server, owner, project):
    code, _, err = cli("--url", live_server.url, "login", "-u", "owner", "--password-stdin",
                       stdin="nope\n")
    assert code == 1 and "HTTP 400: Wrong username or password." in err


def test_submit_watch_and_download_results(cli, logged_in, tmp_path):
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(1, 8)))
    code, out, err = cli("submit", inputs, "--app", "square", "--name", "seven",
                         "--min-quorum", 1, "--target-nresults", 1)
    assert code == 0, err
    batch = Batch.objects.get(name="seven")
    assert f"Submitted batch {batch.pk} with 7 work units" in out

    code, out, _ = cli("status", batch.pk)
    assert code == 0 and "0/7 completed" in out and "(open)" in out

    compute(batch)
    code, out, _ = cli("watch", batch.pk, "--interval", "0.1")
    assert code == 0
    assert "[##############################] 100.0%  7/7 completed  (completed)" in out
    assert "Finished: 7 completed, 0 failed, 0 cancelled." in out

    target = tmp_path / "results.jsonl"
    code, _, err = cli("results", batch.pk, "--format", "jsonl", "-o", target)
    assert code == 0 and "results to" in err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["seq"], r["output"]["square"]) for r in rows] == [(n, n * n) for n in range(1, 8)]

    target = tmp_path / "results.csv"
    assert cli("results", batch.pk, "--format", "csv", "-o", target)[0] == 0
    table = list(csv.reader(target.open()))
    assert table[0] == ["seq", "input.n", "output.n", "output.square", "revalidated"]
    assert table[7] == ["7", "7", "7", "49", "false"]

    code, out, _ = cli("results", batch.pk)   # to standard output
    assert code == 0 and out.count("\n") == 7


def test_submit_csv_and_watch_to_a_failure_exit_code(cli, logged_in, tmp_path):
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("n\n1\n2\n")
    code, out, err = cli("submit", inputs, "--app", "square", "--max-error-results", 1)
    assert code == 0, err
    batch = Batch.objects.get()
    assert batch.name == "inputs.csv"
    compute(batch, fail=(2,))
    code, out, _ = cli("watch", batch.pk, "--interval", "0.1")
    assert code == 3 and "1 completed, 1 failed" in out
    code, out, _ = cli("status", batch.pk)
    assert "1 failed: Too many errors" in out and "ZeroDivisionError" in out
    assert "(completed)" in out
    assert "- Completed: 1 of 2 work units have a validated result; 1 failed: Too many " in out


def test_status_explains_a_stall_in_words(cli, logged_in, tmp_path, make_device):
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import replica_report

    inputs = tmp_path / "one.jsonl"
    inputs.write_text('{"n": 1}\n')
    cli("submit", inputs, "--app", "square", "--min-quorum", 1, "--target-nresults", 1)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=1).replicas
    replica_report(device=device, task_id=task.task_id, ok=False, error="MemoryError")
    code, out, _ = cli("status", Batch.objects.get().pk)
    assert code == 0 and "(open)" in out
    assert ("- 1 work unit waits for a different volunteer: a copy of it ended in an error "
            "or timed out, and the retry must go to someone else.") in out
    assert "1 errors: MemoryError" in out

    code, out, _ = cli("pause", Batch.objects.get().pk)
    code, out, _ = cli("status", Batch.objects.get().pk)
    assert "- Paused: no new tasks go out until you resume it" in out


def test_malformed_file_shows_each_bad_line(cli, logged_in, tmp_path):
    inputs = tmp_path / "bad.jsonl"
    inputs.write_text('{"n": 1}\n{"n": \n[2]\n')
    code, _, err = cli("submit", inputs, "--app", "square")
    assert code == 1
    assert "HTTP 400" in err
    assert "Line 2: not valid JSON" in err and "Line 3: each line must be a JSON object" in err
    assert not Batch.objects.exists() and not WorkUnit.objects.exists()


def test_pause_resume_abort_retire(cli, logged_in, tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"n": 1}\n{"n": 2}\n')
    cli("submit", inputs, "--app", "square")
    batch = Batch.objects.get()
    assert "paused" in cli("pause", batch.pk)[1]
    assert "open" in cli("resume", batch.pk)[1]
    code, out, _ = cli("abort", batch.pk)
    assert code == 0 and "aborted" in out and "2 cancelled" in out
    code, _, err = cli("pause", batch.pk)
    assert code == 1 and "HTTP 409" in err and "aborted" in err
    assert "retired" in cli("retire", batch.pk)[1]
    assert "retired" in cli("batches")[1]


def test_unknown_batch_and_app(cli, logged_in, tmp_path):
    code, _, err = cli("status", 999999)
    assert code == 1 and "HTTP 404: No such batch among your projects." in err
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"n": 1}\n')
    code, _, err = cli("submit", inputs, "--app", "nope")
    assert code == 1 and "No such app" in err


def test_env_overrides_and_logout(cli, logged_in, monkeypatch, tmp_path):
    token = json.loads((tmp_path / "config.json").read_text())["token"]
    monkeypatch.setenv("SPARECYCLES_TOKEN", "bad-token")
    code, _, err = cli("batches")
    assert code == 1 and "HTTP 401" in err and "sparecycles login" in err
    monkeypatch.setenv("SPARECYCLES_TOKEN", token)
    assert cli("apps")[0] == 0 and "square" in cli("apps")[1]
    assert cli("logout")[0] == 0
    assert "token" not in json.loads((tmp_path / "config.json").read_text())
    assert cli("batches")[0] == 1   # the env token was the one revoked


def test_helpful_errors_without_a_server(cli):
    code, _, err = cli("batches")
    assert code == 1 and "No server URL" in err
    code, _, err = cli("--url", "http://127.0.0.1:9", "--token", "x", "batches")
    assert code == 1 and "Can't reach http://127.0.0.1:9" in err
    code, _, err = cli("--url", "ftp://example.org", "--token", "x", "batches")
    assert code == 1 and "not an http(s) URL" in err


def test_progress_line():
    batch = {"state": "open", "counts": {"total": 10, "open": 5, "completed": 4, "failed": 1,
                                         "cancelled": 0}}
    assert progress_line(batch, width=10) == "[#####.....]  50.0%  4/10 completed, 1 failed  (open)"
