"""Byte-compiling app wheels for Pyodide with pyodide-build's py-compile step, run in Pyodide."""

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sparecycles.projects.code_checks import pyodide_python_tag, wheel_check

REPO = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("PYODIDE_BUILD_SITE")
            or REPO / "var/pyodide-build-venv/lib/python3.13/site-packages")


def pure_wheel(folder: Path) -> Path:
    path = folder / "sc_demo-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sc_demo/__init__.py", "def double(x):\n    return 2 * x\n")
        archive.writestr("sc_demo-0.1.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("sc_demo-0.1.dist-info/METADATA", "Name: sc-demo\nVersion: 0.1\n")
        archive.writestr("sc_demo-0.1.dist-info/RECORD", "")
    return path


def test_wheels_compiled_for_pyodides_python_are_accepted():
    tag = pyodide_python_tag()
    assert tag == "cp314"   # Pyodide 314 runs Python 3.14
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/__init__.pyc", b"bytecode")
        archive.writestr("m-1.dist-info/WHEEL", "Root-Is-Purelib: true\n")
    assert wheel_check(filename=f"m-1-{tag}-none-any.whl", content=buffer.getvalue()).project == "m"
    with pytest.raises(Exception, match="not a pure-Python wheel"):
        wheel_check(filename="m-1-cp313-none-any.whl", content=buffer.getvalue())


def test_a_missing_pyodide_build_is_explained(tmp_path):
    with pytest.raises(CommandError, match="It needs Python >= 3.13"):
        call_command("pyodide_compile_wheels", str(pure_wheel(tmp_path)),
                     "--pyodide-build", str(tmp_path))


@pytest.mark.skipif(shutil.which("node") is None or not (SITE / "pyodide_build").exists(),
                    reason="needs node and pyodide-build (see the command's docstring)")
def test_compiled_wheel_holds_python_314_bytecode(tmp_path, capsys):
    call_command("pyodide_compile_wheels", str(pure_wheel(tmp_path)), "--out",
                 str(tmp_path / "out"), "--pyodide-build", str(SITE))
    assert "bytecode of Python 3.14" in capsys.readouterr().out
    compiled = tmp_path / "out" / "sc_demo-0.1-cp314-none-any.whl"
    with zipfile.ZipFile(compiled) as archive:
        names = archive.namelist()
        bytecode = archive.read("sc_demo/__init__.pyc")
    assert "sc_demo/__init__.py" not in names
    # Python 3.14's magic number (3627), not the host's: what Pyodide 314 accepts.
    assert bytecode[:4] == (3627).to_bytes(2, "little") + b"\r\n"
    wheel_check(filename=compiled.name, content=compiled.read_bytes())
