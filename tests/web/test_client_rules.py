"""The volunteer page's pure rules (settings, battery/network/visibility, duty cycle,
backoff) are JavaScript: run their node unit tests from pytest."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JS_TESTS = Path(__file__).resolve().parent / "js"


def test_client_rules_pass_their_node_unit_tests():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (it comes with npm, which `make install` needs)")
    files = sorted(str(path) for path in JS_TESTS.glob("*.test.mjs"))
    assert files, "no JavaScript unit tests found"
    result = subprocess.run([node, "--test", *files], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
