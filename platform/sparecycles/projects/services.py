"""Writes for projects: projects and apps, app versions, batches and their work units."""

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from sparecycles import events
from sparecycles.db.bulk import RowWriter
from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import validator_check

from .code_checks import wasm_abi_check, wheels_check
from .inputs import (  # noqa: F401 (parse_jsonl and the limits are part of this module's API)
    MAX_INPUT_BYTES,
    MAX_REPORTED_ERRORS,
    format_for,
    inputs_check,
    inputs_read,
    inputs_scan,
    parse_jsonl,
)
from .models import App, AppVersion, AppWheel, Batch, Project, Runtime, Validator, WorkUnit
from .signals import workunits_created

BULK_SIZE = 1000
# Upper bounds the database columns can hold (PositiveSmallIntegerField, PositiveIntegerField).
MAX_REPLICAS = 1000
MAX_DELAY_BOUND_S = 365 * 86400


@dataclass(frozen=True)
class QuorumParams:
    min_quorum: int = 1
    target_nresults: int = 1
    max_error_results: int = 3
    max_total_results: int = 6
    max_success_results: int = 4
    delay_bound: int = 3600

    def check(self) -> None:
        problems = []
        for name, value in self.__dict__.items():
            top = MAX_DELAY_BOUND_S if name == "delay_bound" else MAX_REPLICAS
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a whole number of at least 1.")
            elif value > top:
                problems.append(f"{name} must be at most {top}.")
        if not problems:
            if self.min_quorum > self.target_nresults:
                problems.append("min_quorum cannot exceed target_nresults.")
            if self.target_nresults > self.max_total_results:
                problems.append("target_nresults cannot exceed max_total_results.")
            if self.min_quorum > self.max_success_results:
                problems.append("min_quorum cannot exceed max_success_results.")
        if problems:
            raise ValidationError(problems)


def app_code_check(*, code: bytes, runtime: str, entry: str) -> None:
    """Refuse code volunteers could not run, with a message that says why."""
    if not code:
        raise ValidationError("The code file is empty.")
    if runtime == Runtime.WASM:
        if not code.startswith(b"\0asm"):
            raise ValidationError("This is not a WebAssembly module (it lacks the \\0asm header).")
        return
    try:
        source = code.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("main.py must be UTF-8 text.") from None
    try:
        compile(source, "main.py", "exec")
    except SyntaxError as exc:
        raise ValidationError(
            f"main.py has a syntax error on line {exc.lineno}: {exc.msg}.") from None
    if f"def {entry}(" not in source:
        raise ValidationError(f"main.py does not define the entry function {entry}(input).")


MAX_CODE_BYTES = 5 * 1024 * 1024


def app_version_check(*, code: bytes, runtime: str, entry: str,
                      wheels: Sequence[tuple[str, bytes]] = (),
                      flops_per_unit: float = 1e9) -> list:
    """Every rule an app version must meet, in one place: app_version_create runs it, and
    forms that want the message on a field (the admin) call it too. Returns the checked
    wheels. Raises ValidationError with a message that says what to fix."""
    if len(code) > MAX_CODE_BYTES:
        raise ValidationError(f"The code file is larger than {MAX_CODE_BYTES // 2**20} MiB.")
    if runtime not in Runtime.values:
        raise ValidationError(f"Unknown runtime {runtime!r}: use {', '.join(Runtime.values)}.")
    if (isinstance(flops_per_unit, bool) or not isinstance(flops_per_unit, int | float)
            or not math.isfinite(flops_per_unit) or not 0 <= flops_per_unit <= 1e24):
        raise ValidationError("flops_per_unit must be a finite number from 0 to 1e24.")
    app_code_check(code=code, runtime=runtime, entry=entry)
    if runtime == Runtime.WASM:
        wasm_abi_check(code=code, entry=entry)
        if wheels:
            raise ValidationError("Wheels are for the Python runtime; a wasm module needs none.")
    return wheels_check(list(wheels)) if wheels else []


@transaction.atomic
def app_version_create(*, app: App, code: bytes, runtime: str = Runtime.PYODIDE,
                       entry: str = "main", packages: list[str] | None = None,
                       flops_per_unit: float = 1e9,
                       wheels: Sequence[tuple[str, bytes]] = ()) -> AppVersion:
    """Add the next immutable version of `app`.

    `wheels` are (file name, bytes) of pure-Python wheels the code needs. They are
    stored with the version, served at /apps/<name>/<version>/wheels/<file> and
    listed in `packages` as "<url>#sha256=<hash>", which the worker fetches, checks
    and installs before it runs the code.
    """
    checked = app_version_check(code=code, runtime=runtime, entry=entry, wheels=wheels,
                                flops_per_unit=flops_per_unit)
    # Serialise version numbers.
    App.objects.select_for_update(no_key=True).filter(pk=app.pk).first()
    number = (app.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = AppVersion(app=app, number=number, runtime=runtime, entry=entry, code=code,
                         packages=list(packages or []), flops_per_unit=flops_per_unit)
    rows = [AppWheel(filename=w.filename, content=w.content, size=len(w.content),
                     sha256=hashlib.sha256(w.content).hexdigest()) for w in checked]
    version.packages += [f"{version.wheel_url(row.filename)}#sha256={row.sha256}" for row in rows]
    version.save()
    for row in rows:
        row.app_version = version
    AppWheel.objects.bulk_create(rows)
    return version


MAX_VALIDATOR_CODE_CHARS = 100_000


def app_validator_check(*, validator: str, options: Any, code: str,
                        app_id: int | None = None) -> None:
    """Refuse a validator configuration that could not judge results. `app_id` (an app
    being changed) checks in that app's own sandbox process, which then stays warm."""
    if validator not in Validator.values:
        raise ValidationError(f"Unknown validator {validator!r}: use "
                              f"{', '.join(Validator.values)}.")
    if not isinstance(options, dict):
        raise ValidationError('validator_options must be a JSON object, like {"abs_tol": 1e-9}.')
    if validator == Validator.TOLERANCE:
        unknown = sorted(set(options) - {"abs_tol", "rel_tol"})
        if unknown:
            raise ValidationError(f"Unknown tolerance options {', '.join(unknown)}: use abs_tol "
                                  "and rel_tol.")
        for key, value in options.items():
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value < 0):
                raise ValidationError(f"{key} must be a number of at least 0.")
    if validator == Validator.CUSTOM:
        if not code.strip():
            raise ValidationError("The custom validator needs Python code defining "
                                  "equivalent(a, b) -> bool.")
        if len(code) > MAX_VALIDATOR_CODE_CHARS:
            raise ValidationError(f"The validator code is longer than "
                                  f"{MAX_VALIDATOR_CODE_CHARS:,} characters.")
        # Owner code: parsed, loaded and tried only in the sandbox, never in this process.
        try:
            validator_check(code=code, app_id=app_id)
        except ValidatorError as exc:
            raise ValidationError(exc.reason) from None


APP_FIELDS = ("title", "description", "validator", "validator_options", "validate_code",
              "adaptive_replication", "adaptive_threshold", "spot_check_rate",
              "credibility_threshold", "min_memory_mb", "allow_mobile", "output_view")


@transaction.atomic
def app_create(*, project: Project, name: str, title: str, **fields: Any) -> App:
    """A new app of `project`; its validator configuration is checked first."""
    unknown = set(fields) - set(APP_FIELDS)
    if unknown:
        raise TypeError(f"app_create got unknown fields {sorted(unknown)}")
    app = App(project=project, name=name, title=title, **fields)
    app_validator_check(validator=app.validator, options=app.validator_options,
                        code=app.validate_code)
    if App.objects.filter(name=name).exists():
        raise ValidationError(f"An app called {name!r} exists already; app names are global.")
    app.full_clean()
    app.save()
    return app


@transaction.atomic
def app_update(*, app: App, **fields: Any) -> App:
    """Change an app's description or validation settings (its versions stay as they are)."""
    unknown = set(fields) - set(APP_FIELDS)
    if unknown:
        raise TypeError(f"app_update got unknown fields {sorted(unknown)}")
    for name, value in fields.items():
        setattr(app, name, value)
    if fields.keys() & {"validator", "validator_options", "validate_code"}:
        # A custom validator's check starts a sandbox: only when the validation changes.
        app_validator_check(validator=app.validator, options=app.validator_options,
                            code=app.validate_code, app_id=app.pk)
    app.full_clean(exclude=["project", "name"])
    app.save(update_fields=list(fields) or None)
    return app


OWNERS_GROUP = "Project owners"
OWNER_PERMISSIONS = [
    (model, action) for model in ("project", "app", "appversion", "batch", "workunit")
    for action in ("view", "add", "change")
]


def owners_group() -> Group:
    """The group that lets owners into the admin (where they see only their own projects)."""
    group, _ = Group.objects.get_or_create(name=OWNERS_GROUP)
    codenames = [f"{action}_{model}" for model, action in OWNER_PERMISSIONS]
    wanted = Permission.objects.filter(content_type__app_label="projects", codename__in=codenames)
    group.permissions.add(*wanted)
    return group


@transaction.atomic
def project_owner_add(*, project: Project, user) -> None:
    """Make `user` an owner of `project`: staff (admin access) in the owners group."""
    project.owners.add(user)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.groups.add(owners_group())


@transaction.atomic
def project_create(*, slug: str, title: str, owner, description: str = "",
                   is_public: bool = True) -> Project:
    if Project.objects.filter(slug=slug).exists():
        raise ValidationError(f"A project with the slug {slug!r} exists already.")
    project = Project(slug=slug, title=title, description=description, is_public=is_public)
    project.full_clean()
    project.save()
    project_owner_add(project=project, user=owner)
    return project


@transaction.atomic
def project_update(*, project: Project, **fields: Any) -> Project:
    unknown = set(fields) - {"title", "description", "is_public"}
    if unknown:
        raise TypeError(f"project_update got unknown fields {sorted(unknown)}")
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(fields) or None)
    return project


@transaction.atomic
def batch_create(*, app_version: AppVersion, name: str, inputs: Iterable[dict],
                 quorum: QuorumParams | None = None, created_by=None,
                 progress: Callable[[int], None] | None = None) -> Batch:
    """Create a batch and one work unit per input, each with target_nresults unsent replicas.

    All or nothing: any error rolls the whole batch back. Inputs may be a generator:
    they are inserted BULK_SIZE at a time, and `progress(units inserted)` is called
    after each insert.
    """
    quorum = quorum or QuorumParams()
    quorum.check()
    if not name.strip():
        raise ValidationError("The batch needs a name.")
    if isinstance(inputs, Sequence):
        # A list from a request or a caller: the rules a file's lines meet (inputs_read
        # checks a file's lines as it reads them).
        inputs_check(inputs)
    batch = Batch.objects.create(app_version=app_version, name=name.strip()[:200],
                                 created_by=created_by)
    seq = _insert_fast(batch=batch, app_version=app_version, quorum=quorum, inputs=inputs,
                       progress=progress)
    if seq == 0:
        raise ValidationError("A batch needs at least one work unit.")
    return batch


@transaction.atomic
def spot_check_batch_create(*, app_version: AppVersion, known: Iterable[tuple[dict, Any]],
                            created_by=None) -> Batch:
    """A batch of known-answer work units (input, known output) used as spot checks.

    They get no replicas of their own: the scheduler issues one on demand,
    indistinguishable from any other task of the app.
    """
    batch = Batch.objects.create(app_version=app_version, created_by=created_by,
                                 name=f"Known-answer tasks for {app_version}")
    units = [WorkUnit(batch=batch, app_version=app_version, seq=seq, input=value,
                      known_output=output, min_quorum=1, target_nresults=1)
             for seq, (value, output) in enumerate(known, start=1)]
    if not units:
        raise ValidationError("Known-answer tasks need at least one input.")
    WorkUnit.objects.bulk_create(units)
    return batch


def _insert_fast(*, batch: Batch, app_version: AppVersion, quorum: "QuorumParams",
                 inputs: Iterable[dict], progress: Callable[[int], None] | None) -> int:
    """Insert the work units of a new batch; returns the count.

    After each chunk, `workunits_created` tells the scheduler, which issues their
    target_nresults unsent replicas in the same transaction (scheduler.batches).
    """
    units = RowWriter(WorkUnit(batch=batch, app_version=app_version, seq=1, input={},
                               **quorum.__dict__), ["seq", "input"])
    seq = 0
    pending: list[list] = []

    def flush() -> None:
        units.write(pending)
        first = seq - len(pending) + 1
        ids = list(WorkUnit.objects.filter(batch=batch, seq__gte=first, seq__lte=seq)
                   .values_list("pk", flat=True))
        workunits_created.send(sender=Batch, batch=batch, workunit_ids=ids,
                               replicas_each=quorum.target_nresults)
        pending.clear()
        if progress:
            progress(seq)

    for value in inputs:
        seq += 1
        pending.append(units.row(seq=seq, input=value))
        if len(pending) >= BULK_SIZE:
            flush()
    if pending:
        flush()
    return seq


def batch_create_from_file(*, app_version: AppVersion, name: str, file: IO[bytes],
                           fmt: str = "jsonl", quorum: QuorumParams | None = None,
                           created_by=None, progress: Callable[[int, int], None] | None = None
                           ) -> Batch:
    """Create a batch from a JSONL or CSV upload of any size (see projects.inputs).

    The file is read twice: once to check every line (keeping only a count and the
    first errors), then again to insert, BULK_SIZE units at a time, in one
    transaction. A malformed line names itself and nothing is created.
    `progress(done, total)` is called as units are inserted.
    """
    (quorum or QuorumParams()).check()
    total = inputs_scan(file, fmt).count
    file.seek(0)
    report = (lambda done: progress(done, total)) if progress else None
    return batch_create(app_version=app_version, name=name, inputs=inputs_read(file, fmt),
                        quorum=quorum, created_by=created_by, progress=report)


# --- batch life cycle (BOINC's pause/resume; abort_batch and retire_batch cancel replicas,
# so they are the scheduler's: scheduler.batches) -------------------------------------------

class BatchStateError(Exception):
    """The batch is in a state that does not allow this change."""


def batch_locked(batch: Batch) -> Batch:
    """The batch's row, locked for a state change (its life-cycle services take it first)."""
    return Batch.objects.select_for_update(no_key=True).get(pk=batch.pk)


@transaction.atomic
def batch_pause(*, batch: Batch) -> Batch:
    """Stop handing out this batch's work; tasks already out may still come back."""
    batch = batch_locked(batch)
    if batch.state in (Batch.State.ABORTED, Batch.State.RETIRED):
        raise BatchStateError(f"The batch is {batch.state}; it can't be paused.")
    if batch.state != Batch.State.PAUSED:
        batch.state = Batch.State.PAUSED
        batch.save(update_fields=["state"])
        events.progress_changed(batch_ids=[batch.pk])
    return batch


@transaction.atomic
def batch_resume(*, batch: Batch) -> Batch:
    batch = batch_locked(batch)
    if batch.state in (Batch.State.ABORTED, Batch.State.RETIRED):
        raise BatchStateError(f"The batch is {batch.state}; it can't be resumed.")
    if batch.state != Batch.State.OPEN:
        batch.state = Batch.State.OPEN
        batch.save(update_fields=["state"])
        events.progress_changed(batch_ids=[batch.pk])
    return batch
