"""Static files after collectstatic: compressed on the wire, hashed shell names (issue 18)."""

import json
import os
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

from sparecycles.web import pwa

PYODIDE = settings.PYODIDE_URL
RUNTIME = [f"{PYODIDE}{name}" for name in pwa.PYODIDE_RUNTIME_FILES]
WIRE_BUDGET = 6_600_000   # issue 18: the runtime on the wire (brotli, as browsers get it), bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """STATIC_ROOT filled by collectstatic, with `make run`'s quick brotli for big files (at
    quality 11 the wasm takes a minute): gzip and brotli copies, as production has."""
    root = tmp_path_factory.mktemp("staticfiles")
    quick = os.environ.get("SPARECYCLES_STATIC_QUICK")
    os.environ["SPARECYCLES_STATIC_QUICK"] = "1"
    try:
        with override_settings(STATIC_ROOT=root):
            call_command("collectstatic", "--noinput", verbosity=0)
    finally:
        if quick is None:
            os.environ.pop("SPARECYCLES_STATIC_QUICK")
        else:
            os.environ["SPARECYCLES_STATIC_QUICK"] = quick
    with override_settings(STATIC_ROOT=root):
        yield root


def body_size(response) -> int:
    if response.streaming:
        return sum(len(chunk) for chunk in response.streaming_content)
    return len(response.content)


def test_the_runtime_goes_out_compressed_within_the_budget(collected, capsys):
    client = Client()
    on_wire, gzipped, plain = 0, 0, 0
    for url in RUNTIME:
        zipped = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
        brotli = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        identity = client.get(url)
        assert zipped.status_code == brotli.status_code == identity.status_code == 200
        assert "immutable" in zipped["Cache-Control"]
        assert "Content-Encoding" not in identity
        # Every file of the runtime shrinks, the stdlib's split zips too (stored entries).
        assert zipped["Content-Encoding"] == "gzip", url
        assert brotli["Content-Encoding"] == "br", url
        assert "Accept-Encoding" in zipped["Vary"]
        on_wire += body_size(brotli)
        gzipped += body_size(zipped)
        plain += body_size(identity)
    with capsys.disabled():
        print(f"\nruntime: {plain / 1e6:.2f} MB, on the wire {on_wire / 1e6:.2f} MB "
              f"(brotli; gzip only: {gzipped / 1e6:.2f} MB)")
    assert on_wire <= WIRE_BUDGET


def test_the_wasm_is_served_as_wasm_when_compressed(collected):
    response = Client().get(f"{PYODIDE}pyodide.asm.wasm", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Type"] == "application/wasm"
    assert response["Content-Encoding"] == "gzip"


def test_shell_files_get_hashed_names_cached_for_a_year(collected):
    with override_settings(STATIC_ROOT=collected):
        url = static("volunteer/volunteer.js")
        assert re.search(r"/volunteer/volunteer\.[0-9a-f]{12}\.js$", url), url
        response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200
        assert response["Content-Encoding"] == "gzip"
        assert "immutable" in response["Cache-Control"]
        assert "max-age=315360000" in response["Cache-Control"] or \
            "max-age=31536000" in response["Cache-Control"]
        # Its imports name the hashed modules too, so the service worker's shell holds them.
        text = (collected / url.removeprefix(settings.STATIC_URL)).read_text()
        assert re.search(r'from "\./compute-host\.[0-9a-f]{12}\.js"', text)


def test_service_worker_shell_lists_the_hashed_names(collected):
    with override_settings(STATIC_ROOT=collected):
        config = pwa.service_worker_config()
    shell_js = [url for url in config["shell"] if url.endswith(".js")]
    assert shell_js and all(re.search(r"\.[0-9a-f]{12}\.js$", url) for url in shell_js)
    # The runtime keeps its names: the frame and the service worker load it by name.
    assert config["runtimeFiles"] == RUNTIME


def test_a_stale_manifest_is_ignored(collected, tmp_path):
    """A source edited after collectstatic: plain names from the finders, never old bytes."""
    manifest = collected / "staticfiles.json"
    stat = manifest.stat()
    os.utime(manifest, (stat.st_atime, 1))   # as if written before every source file
    try:
        with override_settings(STATIC_ROOT=collected):
            plain = f"{settings.STATIC_URL}volunteer/volunteer.js"
            assert static("volunteer/volunteer.js") == plain
    finally:
        os.utime(manifest, (stat.st_atime, stat.st_mtime))


def test_without_collectstatic_names_stay_plain(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        assert static("volunteer/volunteer.js") == f"{settings.STATIC_URL}volunteer/volunteer.js"
        assert Client().get(static("volunteer/volunteer.js")).status_code == 200


def test_the_manifest_does_not_hash_the_runtime(collected):
    paths = json.loads((collected / "staticfiles.json").read_text())["paths"]
    assert not [name for name in paths if name.startswith("pyodide/")]


def test_the_stdlib_is_split_into_a_compiled_core_and_the_rest():
    """web/split_stdlib.mjs (make install): together the whole standard library."""
    import zipfile

    folder = settings.PYODIDE_DIR
    with zipfile.ZipFile(folder / "python_stdlib.zip") as full, \
            zipfile.ZipFile(folder / "python_stdlib_core.zip") as core, \
            zipfile.ZipFile(folder / "python_stdlib_rest.zip") as rest:
        whole, core_names, rest_names = set(full.namelist()), core.namelist(), rest.namelist()
        assert {"encodings/__init__.pyc", "json/__init__.pyc", "inspect.pyc"} <= set(core_names)
        assert {"fractions.py", "decimal.py", "statistics.py"} <= set(rest_names)
        # Each module once: as bytecode in the core or as source in the rest.
        as_source = {name[:-1] if name.endswith(".pyc") else name for name in core_names}
        assert as_source.isdisjoint(rest_names)
        assert as_source | set(rest_names) == whole
        assert {info.compress_type for info in core.infolist() + rest.infolist()} == {
            zipfile.ZIP_STORED}
