"""The bundled app catalogue: folders under workunits/ in the DESIGN.md format.

    workunits/<name>/manifest.toml   name, title, description, runtime, entry, validator,
                                      [validator_options], [quorum], flops_per_unit
    workunits/<name>/main.py         main(input) -> output (CPython and Pyodide alike)
    workunits/<name>/inputs.py       generate(count, seed) -> iterable of inputs
    workunits/<name>/validate.py     optional equivalent(a, b) -> bool
    workunits/<name>/<name>.wasm     (runtime wasm) the module, ABI in docs/wasm-abi.md

A manifest may also say `output_view = "image-tiles"`: the public project page then
paints the app's validated outputs as a picture.
"""

import importlib.util
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import App, AppVersion, Batch, Project, Runtime, Validator
from .services import (
    QuorumParams,
    app_create,
    app_update,
    app_version_create,
    batch_create,
    spot_check_batch_create,
)

CATALOGUE_DIR = Path(settings.BASE_DIR) / "workunits"
DEMO_PROJECT_SLUG = "spare-cycles-demo"


@dataclass(frozen=True)
class BundledApp:
    path: Path
    name: str
    title: str
    description: str
    runtime: str
    entry: str
    validator: str
    validator_options: dict[str, Any]
    quorum: QuorumParams
    flops_per_unit: float
    packages: list[str] = field(default_factory=list)
    output_view: str = ""

    @property
    def code_file(self) -> Path:
        return self.path / ("main.py" if self.runtime == Runtime.PYODIDE else f"{self.name}.wasm")

    def code(self) -> bytes:
        return self.code_file.read_bytes()

    def validate_code(self) -> str:
        path = self.path / "validate.py"
        return path.read_text() if path.exists() else ""

    def module(self, stem: str) -> ModuleType:
        """Import main.py / inputs.py / validate.py of this app under a private name."""
        spec = importlib.util.spec_from_file_location(f"workunits_{self.name}_{stem}",
                                                      self.path / f"{stem}.py")
        if spec is None or spec.loader is None:
            raise ValidationError(f"{self.name} has no {stem}.py.")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def generate_inputs(self, count: int, seed: int = 0) -> list[dict]:
        return list(self.module("inputs").generate(count, seed))


def bundled_app_names(directory: Path = CATALOGUE_DIR) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if (p / "manifest.toml").exists())


def bundled_app_read(name: str, directory: Path = CATALOGUE_DIR) -> BundledApp:
    path = directory / name
    manifest_path = path / "manifest.toml"
    if not manifest_path.exists():
        known = ", ".join(bundled_app_names(directory)) or "none"
        raise ValidationError(f"No bundled app called {name!r}. Known apps: {known}.")
    try:
        manifest = tomllib.loads(manifest_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{manifest_path} is not valid TOML: {exc}.") from None
    missing = [k for k in ("name", "title", "runtime", "entry", "validator") if k not in manifest]
    if missing:
        raise ValidationError(f"{manifest_path} lacks {', '.join(missing)}.")
    quorum = dict(manifest.get("quorum", {}))
    if "delay_bound_s" in quorum:
        quorum["delay_bound"] = quorum.pop("delay_bound_s")
    known_quorum = QuorumParams.__dataclass_fields__
    unknown = sorted(set(quorum) - set(known_quorum))
    if unknown:
        raise ValidationError(f"{manifest_path}: unknown quorum keys {', '.join(unknown)}.")
    return BundledApp(
        path=path,
        name=manifest["name"],
        title=manifest["title"],
        description=manifest.get("description", ""),
        runtime=manifest["runtime"],
        entry=manifest["entry"],
        validator=manifest["validator"],
        validator_options=dict(manifest.get("validator_options", {})),
        quorum=QuorumParams(**quorum),
        flops_per_unit=float(manifest.get("flops_per_unit", 1e9)),
        packages=list(manifest.get("packages", [])),
        output_view=str(manifest.get("output_view", "")),
    )


@transaction.atomic
def bundled_app_install(bundled: BundledApp, *, project: Project | None = None) -> AppVersion:
    """Create or update the App for a bundled app; add a version only if the code changed."""
    if project is None:
        project, _ = Project.objects.get_or_create(
            slug=DEMO_PROJECT_SLUG,
            defaults={"title": "Spare Cycles demo",
                      "description": "Example apps bundled with Spare Cycles."},
        )
    validator = bundled.validator
    validate_code = bundled.validate_code()
    if validate_code and validator == Validator.EXACT:
        validator = Validator.CUSTOM
    # Through the services, like an owner's app: the same checks (a custom validator is
    # tried in the sandbox; a wasm module's ABI is checked by app_version_create).
    fields = {"title": bundled.title, "description": bundled.description,
              "validator": validator, "validator_options": bundled.validator_options,
              "validate_code": validate_code, "output_view": bundled.output_view}
    app = App.objects.filter(name=bundled.name).first()
    if app is None:
        app = app_create(project=project, name=bundled.name, **fields)
    else:
        if app.project_id != project.pk:
            App.objects.filter(pk=app.pk).update(project=project)
            app.project = project
        app = app_update(app=app, **fields)
    code = bundled.code()
    latest = app.latest_version()
    if latest is not None and latest.sha256 == AppVersion.hash_code(code):
        return latest
    return app_version_create(app=app, code=code, runtime=bundled.runtime, entry=bundled.entry,
                              packages=bundled.packages, flops_per_unit=bundled.flops_per_unit)


def bundled_batch_create(name: str, *, count: int, seed: int = 0,
                         quorum: QuorumParams | None = None, created_by=None) -> Batch:
    """Install bundled app `name` and create a batch of `count` work units from its inputs.py.

    At quorum 2 or more, an app with no known answers yet also gets a few, computed here by
    its own main.py (bundled_known_answers): they let spot checks establish the first
    devices, so a fresh site validates without a manual step.
    """
    if count < 1:
        raise ValidationError("count must be at least 1.")
    bundled = bundled_app_read(name)
    quorum = quorum or bundled.quorum
    known = []
    if quorum.min_quorum >= 2 and not _has_known_answers(bundled.name):
        wanted = settings.SPARECYCLES["KNOWN_ANSWERS"]
        # Inputs from the same series, just past the batch: they look like its neighbours.
        extra = bundled.generate_inputs(count + wanted, seed)[count:]
        known = bundled_known_answers(bundled, extra,
                                      budget_s=settings.SPARECYCLES["KNOWN_ANSWER_BUDGET_S"])
    inputs = bundled.generate_inputs(count, seed)
    with transaction.atomic():
        version = bundled_app_install(bundled)
        if known and not _has_known_answers(bundled.name):
            spot_check_batch_create(app_version=version, known=known)
        return batch_create(
            app_version=version,
            name=f"{bundled.title}: {len(inputs)} units (seed {seed})",
            inputs=inputs,
            quorum=quorum,
            created_by=created_by,
        )


def _has_known_answers(app_name: str) -> bool:
    from .models import WorkUnit

    return WorkUnit.objects.filter(app_version__app__name=app_name,
                                   known_output__isnull=False).exists()


_KNOWN_ANSWER_SCRIPT = """
import json, runpy, sys
entry = runpy.run_path(sys.argv[1])[sys.argv[2]]
for line in sys.stdin:
    print(json.dumps(entry(json.loads(line))), flush=True)
"""


def bundled_known_answers(bundled: BundledApp, inputs: list[dict], *, budget_s: float
                          ) -> list[tuple[dict, Any]]:
    """(input, output) pairs computed natively by the app's main.py, in a child process
    that is stopped after `budget_s` seconds: whatever finished by then is kept (a slow
    app gets fewer known answers, never a stalled load). Python apps only."""
    main = bundled.path / "main.py"
    if bundled.runtime != Runtime.PYODIDE or not main.exists() or not inputs:
        return []
    payload = "".join(json.dumps(value) + "\n" for value in inputs)
    try:
        done = subprocess.run([sys.executable, "-c", _KNOWN_ANSWER_SCRIPT, str(main),
                               bundled.entry], input=payload, capture_output=True, text=True,
                              timeout=budget_s, check=False)
        lines = done.stdout.splitlines()
    except subprocess.TimeoutExpired as stopped:
        out = stopped.stdout or b""
        text = out.decode() if isinstance(out, bytes) else out
        lines = text.split("\n")[:-1]  # the last piece was cut off by the stop (or is empty)
    known = []
    for value, line in zip(inputs, lines, strict=False):
        try:
            known.append((value, json.loads(line)))
        except ValueError:
            break
    return known


def bundled_spot_checks_create(name: str, *, count: int, seed: int = 1_000_003) -> Batch:
    """Known-answer tasks for bundled app `name`, answered here by its own (trusted) main.py.

    The seed differs from ordinary batches' so volunteers can't recognise the inputs.
    """
    bundled = bundled_app_read(name)
    main = getattr(bundled.module("main"), bundled.entry)
    inputs = bundled.generate_inputs(count, seed)
    known = [(value, json.loads(json.dumps(main(value)))) for value in inputs]
    with transaction.atomic():
        version = bundled_app_install(bundled)
        return spot_check_batch_create(app_version=version, known=known)
