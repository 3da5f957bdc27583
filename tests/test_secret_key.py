"""No server starts on the development key unless told to; the development key is flagged."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sparecycles import secret_key
from tests.live_server import free_port

REPO = Path(__file__).resolve().parents[1]


def environment(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "HTTPS"}}
    env.update({"PYTHONPATH": str(REPO / "platform"), **extra})
    return env


def run(command, **extra):
    return subprocess.run(command, cwd=REPO, env=environment(**extra), capture_output=True,
                          text=True, timeout=120)


def test_daphne_without_a_key_refuses_to_start_with_one_line():
    result = run([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(free_port()),
                  "sparecycles.asgi:application"])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "set SECRET_KEY or SECRET_KEY_FILE" in lines[0]


def test_serve_without_a_key_refuses_to_start_with_one_line():
    result = run([sys.executable, "manage.py", "serve", "--workers", "1",
                  "--port", str(free_port())])
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: Spare Cycles cannot start: " + secret_key.serving_refusal(
            debug=False, environ={})]


def test_with_debug_or_a_configured_key_the_application_loads(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("a-real-secret-" + "k" * 40)
    for extra in ({"DEBUG": "true"}, {"SECRET_KEY_FILE": str(key_file)},
                  {"SECRET_KEY": "another-real-secret-" + "s" * 40}):
        result = run([sys.executable, "-c", "import sparecycles.asgi"], **extra)
        assert result.returncode == 0, (extra, result.stderr)


def test_an_unreadable_key_file_is_one_line(tmp_path):
    result = run([sys.executable, "manage.py", "check"],
                 SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Spare Cycles cannot start: SECRET_KEY_FILE={tmp_path / 'missing'} cannot be read "
        "(No such file or directory)."]


def test_the_development_key_is_random_private_stable_and_flagged(tmp_path):
    key = secret_key.development_key(tmp_path)
    assert key.startswith("django-insecure-") and len(key) >= 66
    path = secret_key.development_key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key.development_key(tmp_path) == key  # made once, then reused
    other = tmp_path / "other"
    other.mkdir()
    assert secret_key.development_key(other) != key  # random per checkout, not a known key
    # Django's deployment checklist flags it.
    result = run([sys.executable, "manage.py", "check", "--deploy"],
                 SPARECYCLES_VAR_DIR=str(tmp_path))
    assert "security.W009" in result.stdout + result.stderr


def test_development_key_environ_keeps_a_configured_key(tmp_path):
    assert secret_key.development_key_environ({"SECRET_KEY": "x"}, tmp_path) == {
        "SECRET_KEY": "x"}
    env = secret_key.development_key_environ({}, tmp_path)
    assert Path(env["SECRET_KEY_FILE"]) == secret_key.development_key_path(tmp_path)
    assert Path(env["SECRET_KEY_FILE"]).exists()


@pytest.mark.parametrize("key", [None, "dev"])
def test_https_without_a_real_key_refuses_every_command_with_one_line(key, tmp_path):
    extra = {"HTTPS": "true", "SPARECYCLES_VAR_DIR": str(tmp_path)}
    if key == "dev":  # told to use the development key: still not with HTTPS
        extra["SECRET_KEY_FILE"] = str(secret_key.development_key_environ(
            {}, tmp_path)["SECRET_KEY_FILE"])
    result = run([sys.executable, "manage.py", "migrate", "--check"], **extra)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "Set SECRET_KEY (or SECRET_KEY_FILE) to a real secret when HTTPS is on" in line
