"""platform/ is a source root, not a package: a package of that name would shadow the stdlib."""

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_platform_is_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_still_imports_from_the_repo_root():
    result = subprocess.run(
        [sys.executable, "-c", "import platform, uuid; print(platform.system())"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == importlib.import_module("platform").system()
    assert importlib.import_module("platform").__file__.startswith(sys.base_prefix)
