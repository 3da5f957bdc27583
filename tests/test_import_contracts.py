"""The layering (pyproject.toml's [tool.importlinter]) holds, with no exception listed:
identity < work < validation < credit < ledger < edges, low helpers below all; the ledger
imports no gateway and no scheduler; no domain app imports api, gateway or web."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "platform")}
    result = subprocess.run([Path(sys.executable).with_name("lint-imports"), "--no-cache"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout or "broken" not in result.stdout


def test_the_contracts_list_no_exceptions():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert len(config["contracts"]) >= 3
    for contract in config["contracts"]:
        assert "ignore_imports" not in contract, contract["name"]
        assert "unmatched_ignore_imports_alerting" not in contract, contract["name"]
