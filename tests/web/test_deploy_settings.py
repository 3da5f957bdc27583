"""Production settings pass Django's deployment checklist; secrets come from the environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(**env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x" * 30 + "-a-long-random-production-secret-" + "y" * 20)
    result = run_check(HTTPS="true", SECRET_KEY_FILE=str(secret),
                       ALLOWED_HOSTS="sparecycles.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_https_without_a_secret_key_refuses_to_start():
    result = run_check(HTTPS="true")
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr
