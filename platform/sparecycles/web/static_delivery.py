"""How static files reach browsers: hashed shell names, precompressed bytes (issue 18).

`collectstatic` (production, and `make run`) writes into STATIC_ROOT:
- the shell (our CSS, JS, icons) under content-hashed names as well, with the JS modules'
  `import … from "./x.js"` rewritten to the hashed names; pages link the hashed names,
  which WhiteNoise serves as immutable for a year;
- the Pyodide runtime under its own names: its URL carries the Pyodide version already,
  and pyodide.mjs, the compute frame and the service worker load its files by name;
- next to every file that shrinks, `.gz` and (with the `brotli` package) `.br` copies,
  which WhiteNoise and nginx (`gzip_static`) send to browsers that accept them.

Without a collected manifest (tests, a fresh checkout) or with one older than the sources
(a file edited since the last collectstatic), names stay unhashed and files come straight
from the finders, so an edit is never hidden behind a stale copy.
"""

import os
from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from whitenoise.compress import Compressor
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Under STATIC_URL: the runtime's versioned folder (settings.PYODIDE_URL).
RUNTIME_PREFIX = "pyodide/"


def _is_runtime(name: str) -> bool:
    return name.replace(os.sep, "/").lstrip("/").startswith(RUNTIME_PREFIX)


def _newest_source_mtime() -> float:
    newest = 0.0
    for finder in finders.get_finders():
        for path, storage in finder.list(["*.py", "__pycache__"]):
            newest = max(newest, os.stat(storage.path(path)).st_mtime)
    return newest


@lru_cache(maxsize=1)
def _manifest_fresh_cached(manifest_mtime: float) -> bool:
    return _newest_source_mtime() <= manifest_mtime


# SPARECYCLES_STATIC_QUICK=1 (`make run`): brotli at quality 5 instead of 11 for files over
# this size. The wasm then takes seconds rather than a minute or more on a busy machine,
# at 3.2 MB instead of 2.7 MB on the wire; a production collectstatic keeps quality 11.
QUICK_BROTLI_OVER_BYTES = 256 * 1024
QUICK_BROTLI_QUALITY = 5


# What WhiteNoise does not try to compress, but for zip files.
COMPRESSED_ELSEWHERE = tuple(ext for ext in Compressor.SKIP_COMPRESS_EXTENSIONS if ext != "zip")


class QuickBigFilesCompressor(Compressor):
    def compress_brotli(self, data):
        import brotli

        if len(data) > QUICK_BROTLI_OVER_BYTES:
            return brotli.compress(data, quality=QUICK_BROTLI_QUALITY)
        return brotli.compress(data)


class ShellStaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed shell; the runtime compressed under its own names."""

    # `import { x } from "./y.js"` in our modules points at y's hashed name, so the service
    # worker's shell (hashed URLs) holds every module the page imports.
    support_js_module_import_aggregation = True
    manifest_strict = False

    def __init__(self, *args, brotli: bool = True, **kwargs):
        # STORAGES OPTIONS {"brotli": False}: gzip only (brotli of the 9.6 MB wasm takes a while).
        self.brotli = brotli
        super().__init__(*args, **kwargs)

    def create_compressor(self, **kwargs):
        # The stdlib's split zips (web/split_stdlib.mjs) have stored entries: they
        # shrink a lot, so .zip is tried too (a zip that does not shrink gets no copy).
        if kwargs.get("extensions") is None:
            kwargs["extensions"] = COMPRESSED_ELSEWHERE
        if os.environ.get("SPARECYCLES_STATIC_QUICK") == "1":
            return QuickBigFilesCompressor(use_brotli=self.brotli, **kwargs)
        return super().create_compressor(use_brotli=self.brotli, **kwargs)

    def manifest_fresh(self) -> bool:
        """A manifest exists and no source file changed after it was written."""
        try:
            mtime = os.stat(self.path(self.manifest_name)).st_mtime
        except OSError:
            return False
        return _manifest_fresh_cached(mtime)

    def stored_name(self, name):
        if _is_runtime(name) or "?" in name or "#" in name or not self.manifest_fresh():
            return name
        hashed = self.hashed_files.get(self.hash_key(self.clean_name(name)))
        return hashed or name

    def post_process(self, paths, dry_run=False, **options):
        shell = {name: found for name, found in paths.items() if not _is_runtime(name)}
        runtime = [name for name in paths if _is_runtime(name)]
        yield from super().post_process(shell, dry_run=dry_run, **options)
        if not dry_run:
            for name, compressed in self.compress_files(runtime):
                yield name, compressed, True

    def compress_files(self, paths):
        return super().compress_files(list(self.needing_compression(paths)))

    def needing_compression(self, names):
        """Only what changed since its .gz/.br were written (the runtime alone is 13 MB)."""
        for name in names:
            source = os.stat(self.path(name)).st_mtime
            suffixes = (".gz", ".br") if self.brotli else (".gz",)
            done = [f"{name}{suffix}" for suffix in suffixes if self.exists(f"{name}{suffix}")]
            if not done or any(os.stat(self.path(path)).st_mtime < source for path in done):
                yield name


def _same_file(collected: str, source: str) -> bool:
    try:
        a, b = os.stat(collected), os.stat(source)
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime >= b.st_mtime


class StaticDeliveryMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, preferring collected files (which have .gz/.br beside them) over the
    finders' copies while they are the same file; an edited source wins."""

    def add_files_from_finders(self):
        collected = {url: entry for url, entry in self.files.items()}
        super().add_files_from_finders()
        root = str(settings.STATIC_ROOT)
        for url, entry in collected.items():
            current = self.files.get(url)
            if current is entry:
                continue
            collected_path = os.path.join(root, url[len(self.static_prefix):])
            source = finders.find(url[len(self.static_prefix):])
            if source and _same_file(collected_path, source):
                self.files[url] = entry
