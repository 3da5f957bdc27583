"""Checks on uploaded code that volunteers will run: WebAssembly modules and pure-Python wheels.

Both are read, never executed, on the server. The wasm ABI is described in
docs/wasm-abi.md; wheels must be pure Python because a browser can't load
native extensions that were not built for Pyodide.
"""

import io
import json
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.core.exceptions import ValidationError

MAX_WHEEL_BYTES = 10 * 1024 * 1024
MAX_WHEELS_BYTES = 20 * 1024 * 1024
MAX_WHEELS = 20
WASM_MAGIC = b"\0asm"
WASM_KIND = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}

# name-version(-build)?-python-abi-platform.whl (PEP 427), names already normalised to _
WHEEL_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(?:-(?P<build>\d[A-Za-z0-9_.]*))?"
    r"-(?P<python>[A-Za-z0-9_.]+)-(?P<abi>[A-Za-z0-9_.]+)-(?P<platform>[A-Za-z0-9_.]+)\.whl$"
)
NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".a", ".wasm")


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise ValueError("integer too long")

    def name(self) -> str:
        length = self.uleb()
        if self.pos + length > self.end:
            raise ValueError("truncated name")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class WasmSummary:
    exports: dict[str, str]          # name -> kind
    imports: list[tuple[str, str]]   # (module, field)


def wasm_summary(code: bytes) -> WasmSummary:
    """Exports and imports of a WebAssembly binary; ValidationError if it is not one."""
    if not code.startswith(WASM_MAGIC):
        raise ValidationError("This is not a WebAssembly module (it lacks the \\0asm header).")
    if code[4:8] != b"\x01\0\0\0":
        raise ValidationError("Only WebAssembly binary format version 1 is supported.")
    exports: dict[str, str] = {}
    imports: list[tuple[str, str]] = []
    reader = _Reader(code, 8)
    try:
        while reader.pos < len(code):
            section = reader.byte()
            size = reader.uleb()
            start = reader.pos
            if start + size > len(code):
                raise ValueError("a section runs past the end of the file")
            body = _Reader(code, start, start + size)
            if section == 2:  # imports: names come first; the rest we need not decode
                for _ in range(body.uleb()):
                    imports.append((body.name(), body.name()))
                    break
            elif section == 7:
                for _ in range(body.uleb()):
                    name = body.name()
                    kind = body.byte()
                    body.uleb()
                    exports[name] = WASM_KIND.get(kind, f"kind {kind}")
            reader.pos = start + size
    except ValueError as exc:
        raise ValidationError(f"The WebAssembly module is damaged: {exc}.") from None
    return WasmSummary(exports=exports, imports=imports)


def wasm_abi_check(*, code: bytes, entry: str) -> None:
    """Refuse a module the worker could not run under the JSON-in/JSON-out ABI."""
    summary = wasm_summary(code)
    if summary.imports:
        module, field = summary.imports[0]
        raise ValidationError(
            f"The module imports {module}.{field}, but the runtime provides no imports: "
            "build it freestanding (clang --target=wasm32 -nostdlib), see docs/wasm-abi.md.")
    missing = [f"{name} ({kind})" for name, kind in
               (("memory", "memory"), ("alloc", "function"), (entry, "function"))
               if summary.exports.get(name) != kind]
    if missing:
        raise ValidationError(
            f"The module must export {', '.join(missing)}; it exports "
            f"{', '.join(sorted(summary.exports)) or 'nothing'}. See docs/wasm-abi.md.")


@cache
def pyodide_python_tag() -> str | None:
    """"cp314" for the pinned Pyodide (its lock file says Python 3.14.x), else None."""
    from django.conf import settings

    try:
        info = json.loads((Path(settings.PYODIDE_DIR) / "pyodide-lock.json").read_text())["info"]
        major, minor = info["python"].split(".")[:2]
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return f"cp{major}{minor}"


@dataclass(frozen=True)
class Wheel:
    filename: str
    content: bytes
    project: str
    version: str


def wheel_check(*, filename: str, content: bytes) -> Wheel:
    """A pure-Python wheel, safe to unpack into site-packages; ValidationError otherwise."""
    match = WHEEL_NAME.match(filename or "")
    if not match:
        raise ValidationError(f"{filename!r} is not a wheel file name "
                              "(name-version-python-abi-platform.whl).")
    # py3-none-any, or the same byte-compiled for Pyodide's own Python (cp314-none-any,
    # see manage.py pyodide_compile_wheels).
    compiled = pyodide_python_tag()
    if match["abi"] != "none" or match["platform"] != "any" or not (
            match["python"].startswith(("py3", "py2.py3")) or match["python"] == compiled):
        raise ValidationError(f"{filename} is not a pure-Python wheel (it needs the tags "
                              f"py3-none-any{f' or {compiled}-none-any' if compiled else ''}): "
                              "a browser can only run pure-Python wheels.")
    if len(content) > MAX_WHEEL_BYTES:
        raise ValidationError(f"{filename} is larger than {MAX_WHEEL_BYTES // 2**20} MiB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ValidationError(f"{filename} is not a valid wheel (not a zip archive).") from None
    for name in names:
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
            raise ValidationError(f"{filename} holds an unsafe path: {name!r}.")
        if name.lower().endswith(NATIVE_SUFFIXES):
            raise ValidationError(f"{filename} holds native code ({name}); only pure-Python "
                                  "wheels can run in the browser.")
    dist_info = f"{match['name']}-{match['version']}.dist-info/WHEEL"
    wheel_files = [n for n in names if n.endswith(".dist-info/WHEEL") and "/" in n
                   and n.count("/") == 1]
    if dist_info not in names and not wheel_files:
        raise ValidationError(f"{filename} has no .dist-info/WHEEL file.")
    try:
        metadata = archive.read(dist_info if dist_info in names else wheel_files[0])
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError):
        raise ValidationError(f"{filename} is damaged: its WHEEL file can't be read.") from None
    if b"root-is-purelib: true" not in metadata.lower():
        raise ValidationError(f"{filename} is not a pure-Python wheel (Root-Is-Purelib is "
                              "not true).")
    return Wheel(filename=filename, content=content, project=match["name"],
                 version=match["version"])


def wheels_check(wheels: list[tuple[str, bytes]]) -> list[Wheel]:
    if len(wheels) > MAX_WHEELS:
        raise ValidationError(f"An app version takes at most {MAX_WHEELS} wheels.")
    if sum(len(content) for _, content in wheels) > MAX_WHEELS_BYTES:
        raise ValidationError(f"The wheels add up to more than {MAX_WHEELS_BYTES // 2**20} MiB.")
    checked = [wheel_check(filename=name, content=content) for name, content in wheels]
    names = [w.filename for w in checked]
    if len(set(names)) != len(names):
        raise ValidationError("The same wheel file is listed twice.")
    return checked
