"""App versions and batches: validation at the edge, all-or-nothing creation."""

import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from sparecycles.projects.models import App, AppVersion, Batch, WorkUnit
from sparecycles.projects.services import (
    MAX_CODE_BYTES,
    MAX_INPUT_BYTES,
    MAX_REPLICAS,
    QuorumParams,
    app_create,
    app_update,
    app_version_create,
    batch_create,
    batch_create_from_file,
    parse_jsonl,
)
from sparecycles.scheduler.models import Replica

pytestmark = pytest.mark.django_db

WASM = (Path(__file__).resolve().parents[2]
        / "workunits/mandelbrot-wasm/mandelbrot-wasm.wasm").read_bytes()


def test_versions_are_numbered_and_hashed(app, app_version):
    second = app_version_create(app=app, code=b"def main(input):\n    return {}\n")
    assert (app_version.number, second.number) == (1, 2)
    assert second.sha256 == AppVersion.hash_code(b"def main(input):\n    return {}\n")


def test_a_version_is_immutable(app_version):
    app_version.entry = "other"
    with pytest.raises(ValidationError, match="immutable"):
        app_version.save()


@pytest.mark.parametrize("code, message", [
    (b"", "empty"),
    (b"def main(input:\n", "syntax error on line 1"),
    (b"def run(x):\n    return x\n", "entry function main"),
    (b"\xff\xfe", "UTF-8"),
])
def test_unrunnable_code_is_refused(app, code, message):
    with pytest.raises(ValidationError, match=message):
        app_version_create(app=app, code=code)
    assert not app.versions.exists()


def test_wasm_needs_the_wasm_header(app):
    with pytest.raises(ValidationError, match="WebAssembly"):
        app_version_create(app=app, code=b"not wasm", runtime="wasm")
    # (Before issue 17 the service took an empty module; now it checks the ABI, below.)
    version = app_version_create(app=app, code=WASM, runtime="wasm", entry="run")
    assert version.runtime == "wasm"


# --- rules inside the service: every caller (admin, API, catalogue, CLI) gets them ----------

def test_the_service_checks_the_wasm_abi_itself(app):
    with pytest.raises(ValidationError,
                       match=r"must export memory \(memory\), alloc \(function\), run"):
        app_version_create(app=app, code=b"\0asm\x01\0\0\0", runtime="wasm", entry="run")
    with pytest.raises(ValidationError, match="must export .*nope"):
        app_version_create(app=app, code=WASM, runtime="wasm", entry="nope")
    assert not app.versions.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"code": b"x" * (MAX_CODE_BYTES + 1)}, "larger than 5 MiB"),
    ({"runtime": "java"}, "Unknown runtime 'java'"),
    ({"flops_per_unit": float("nan")}, "finite number"),
    ({"flops_per_unit": -1.0}, "finite number"),
    ({"code": WASM, "runtime": "wasm", "entry": "run",
      "wheels": [("x-1-py3-none-any.whl", b"PK")]}, "Wheels are for the Python runtime"),
])
def test_bad_app_versions_are_refused_by_the_service(app, kwargs, message):
    args = {"code": b"def main(input):\n    return {}\n", **kwargs}
    with pytest.raises(ValidationError, match=message):
        app_version_create(app=app, **args)
    assert not app.versions.exists()


@pytest.mark.parametrize("inputs, message", [
    ([{"n": 1}, [1, 2]], "Input 2: must be a JSON object"),
    ([{"s": "a\u0000b"}], "Input 1: contains a NUL character"),
    ([{"s": "x" * (MAX_INPUT_BYTES + 1)}], "Input 1: longer than"),
    ([], "at least one work unit"),
])
def test_bad_batch_inputs_are_refused_by_the_service(app_version, inputs, message):
    with pytest.raises(ValidationError, match=message):
        batch_create(app_version=app_version, name="b", inputs=inputs)
    assert not Batch.objects.exists() and not WorkUnit.objects.exists()


@pytest.mark.parametrize("quorum, message", [
    (QuorumParams(min_quorum=0), "min_quorum must be a whole number of at least 1"),
    (QuorumParams(target_nresults=MAX_REPLICAS + 1), "at most 1000"),
    (QuorumParams(min_quorum=2, target_nresults=2, max_success_results=1),
     "min_quorum cannot exceed max_success_results"),
])
def test_bad_quorums_are_refused_by_the_service(app_version, quorum, message):
    with pytest.raises(ValidationError, match=message):
        batch_create(app_version=app_version, name="b", inputs=[{"n": 1}], quorum=quorum)
    assert not Batch.objects.exists()


@pytest.mark.parametrize("fields, message", [
    ({"validator": "fuzzy"}, "Unknown validator 'fuzzy'"),
    ({"validator": "tolerance", "validator_options": {"abs_tol": -1}}, "at least 0"),
    ({"validator": "tolerance", "validator_options": {"eps": 1}}, "Unknown tolerance options"),
    ({"validator": "custom", "validate_code": ""}, "needs Python code"),
])
def test_bad_validator_settings_are_refused_by_the_service(project, app, fields, message):
    with pytest.raises(ValidationError, match=message):
        app_create(project=project, name="other", title="Other", **fields)
    with pytest.raises(ValidationError, match=message):
        app_update(app=app, **fields)
    assert not App.objects.filter(name="other").exists()


def test_batch_creates_workunits_with_unsent_replicas(app_version):
    batch = batch_create(app_version=app_version, name="b", inputs=[{"n": 1}, {"n": 2}],
                         quorum=QuorumParams(min_quorum=2, target_nresults=3))
    units = list(batch.workunits.order_by("seq"))
    assert [u.seq for u in units] == [1, 2]
    assert all(u.min_quorum == 2 and u.target_nresults == 3 for u in units)
    assert Replica.objects.filter(server_state="unsent").count() == 6


def test_inconsistent_quorum_is_refused(app_version):
    with pytest.raises(ValidationError, match="min_quorum cannot exceed target_nresults"):
        batch_create(app_version=app_version, name="b", inputs=[{"n": 1}],
                     quorum=QuorumParams(min_quorum=3, target_nresults=2))
    assert not Batch.objects.exists()


def test_jsonl_blank_lines_are_skipped():
    parsed = list(parse_jsonl(io.BytesIO(b'{"n": 1}\n\n  \n{"n": 2}\n')))
    assert parsed == [(1, {"n": 1}), (4, {"n": 2})]


def test_malformed_jsonl_names_every_bad_line_and_creates_nothing(app_version):
    upload = io.BytesIO(b'{"n": 1}\n{"n": \n[1, 2]\n{"n": 4}\n\xff\n')
    with pytest.raises(ValidationError) as caught:
        batch_create_from_file(app_version=app_version, name="b", file=upload)
    messages = caught.value.messages
    assert messages[0].startswith("Line 2: not valid JSON")
    assert messages[1].startswith("Line 3: each line must be a JSON object")
    assert messages[2] == "Line 5: not UTF-8 text."
    assert not Batch.objects.exists() and not WorkUnit.objects.exists()


def test_empty_jsonl_is_refused(app_version):
    with pytest.raises(ValidationError, match="no work units"):
        batch_create_from_file(app_version=app_version, name="b", file=io.BytesIO(b"\n"))


def test_error_report_is_capped():
    with pytest.raises(ValidationError) as caught:
        list(parse_jsonl(io.BytesIO(b"x\n" * 50)))
    assert caught.value.messages[-1] == "…and 30 more bad lines."
