"""The layering edges issue 17 (items 3 and 5) fixes, checked on every import (function-level
ones too): the low modules import no app, and no domain app imports an edge."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "platform" / "sparecycles"
APPS = {p.name for p in SRC.iterdir() if (p / "apps.py").exists()}
DOMAIN = {"volunteers", "projects", "scheduler", "validation", "credit", "ledger"}
EDGES = {"gateway", "api", "web", "leaderboards", "housekeeping", "accounts", "owners"}


def imported_apps(path: Path) -> set[str]:
    """The sparecycles apps a module imports (by `import` or `from ... import`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sparecycles" and len(parts) > 1 and parts[1] in APPS:
                found.add(parts[1])
    return found


def modules(where: str) -> list[Path]:
    path = SRC / where
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("low", ["settings.py", "events.py", "redis_connection.py",
                                 "trusted_proxies.py", "jobs"])
def test_low_modules_import_no_app(low):
    found = {app for path in modules(low) for app in imported_apps(path)} - {"jobs"}
    assert found == set(), f"{low} imports {sorted(found)}"


@pytest.mark.parametrize("app", sorted(DOMAIN))
def test_no_domain_app_imports_an_edge(app):
    for path in modules(app):
        assert not imported_apps(path) & EDGES, path


def test_the_scheduler_imports_no_ledger():
    """Closing epochs is housekeeping's business now, not the scheduler's."""
    for path in modules("scheduler"):
        assert "ledger" not in imported_apps(path), path


def test_credit_and_projects_push_through_events_not_the_scheduler():
    for path in modules("credit") + modules("projects"):
        assert "scheduler.notify" not in path.read_text(), path


def test_no_socket_consumer_starts_housekeeping():
    for path in modules("gateway") + modules("leaderboards"):
        assert "housekeeping" not in imported_apps(path), path
