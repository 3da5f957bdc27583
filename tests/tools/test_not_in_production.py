"""The developer tools are not apps of a production site; SPARECYCLES_TOOLS turns them on."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOW = ("import django; django.setup(); from django.conf import settings; "
        "print(','.join(a for a in settings.INSTALLED_APPS if a.startswith('tools')))")


def installed_tools(**env: str) -> str:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "sparecycles.settings",
            "PYTHONPATH": f"{REPO / 'platform'}:{REPO}", "SPARECYCLES_VAR_DIR": "/tmp"}
    done = subprocess.run([sys.executable, "-c", SHOW], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_production_settings_install_no_tools():
    assert installed_tools() == ""


def test_the_switch_and_debug_install_them():
    assert installed_tools(SPARECYCLES_TOOLS="1") == "tools.bench,tools.swarm"
    assert installed_tools(DEBUG="1") == "tools.bench,tools.swarm"
    assert installed_tools(DEBUG="1", SPARECYCLES_TOOLS="0") == ""


def test_the_site_does_not_import_the_tools():
    site = REPO / "platform" / "sparecycles"
    offenders = [str(path.relative_to(REPO)) for path in site.rglob("*.py")
                 if "from tools" in path.read_text() or "import tools" in path.read_text()]
    assert offenders == []
