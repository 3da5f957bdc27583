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
from django.utils import timezone

from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import validator_check
from sparecycles.scheduler.models import Cancelled, Replica, new_task_id
from sparecycles.scheduler.notify import notify_cancelled

from .code_checks import wheels_check
from .inputs import (  # noqa: F401 (parse_jsonl and the limits are part of this module's API)
    MAX_INPUT_BYTES,
    MAX_REPORTED_ERRORS,
    format_for,
    inputs_read,
    inputs_scan,
    parse_jsonl,
)
from .models import App, AppVersion, AppWheel, Batch, Project, Runtime, Validator, WorkUnit

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
    app_code_check(code=code, runtime=runtime, entry=entry)
    checked = wheels_check(list(wheels)) if wheels else []
    if checked and runtime != Runtime.PYODIDE:
        raise ValidationError("Wheels are for the Python runtime; a wasm module needs none.")
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


class _RowWriter:
    """Fast INSERTs of many rows of one model, bypassing the ORM's per-value SQL compilation.

    bulk_create spends ~0.15 ms per row compiling SQL for every value; a 100,000-unit
    upload is 200,000 rows. Here the column list and every column's value come from a
    template instance through the fields' own pre_save/get_db_prep_save (so defaults
    and adapters are Django's), and only the `varying` columns change per row.
    PostgreSQL gets the rows by COPY (psycopg 3), others by executemany — measured
    here the fastest way on each (multi-row VALUES was slower on both).
    """

    def __init__(self, template, varying: list[str]):
        self.connection = transaction.get_connection()
        meta = type(template)._meta
        self.fields = [f for f in meta.concrete_fields if not f.primary_key]
        self.base = [f.get_db_prep_save(f.pre_save(template, add=True), self.connection)
                     for f in self.fields]
        names = [f.attname for f in self.fields]
        self.slots = {name: names.index(name) for name in varying}
        self.prep = {name: self.fields[self.slots[name]] for name in varying}
        quote = self.connection.ops.quote_name
        self.table = quote(meta.db_table)
        self.columns = ", ".join(quote(f.column) for f in self.fields)
        self.copy = (self.connection.vendor == "postgresql"
                     and hasattr(self.connection.connection, "pipeline"))  # psycopg 3
        self.sql = (f"INSERT INTO {self.table} ({self.columns}) "
                    f"VALUES ({', '.join(['%s'] * len(self.fields))})")

    def row(self, **values) -> list:
        row = list(self.base)
        for name, value in values.items():
            row[self.slots[name]] = self.prep[name].get_db_prep_save(value, self.connection)
        return row

    def write(self, rows: list[list]) -> None:
        with self.connection.cursor() as cursor:
            if self.copy:
                with cursor.cursor.copy(f"COPY {self.table} ({self.columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(self.sql, rows)


def _insert_fast(*, batch: Batch, app_version: AppVersion, quorum: "QuorumParams",
                 inputs: Iterable[dict], progress: Callable[[int], None] | None) -> int:
    """Insert the work units of a new batch and their unsent replicas; returns the count."""
    units = _RowWriter(WorkUnit(batch=batch, app_version=app_version, seq=1, input={},
                                **quorum.__dict__), ["seq", "input"])
    replicas = _RowWriter(Replica(workunit_id=0), ["workunit_id", "task_id"])
    seq = 0
    pending: list[list] = []

    def flush() -> None:
        units.write(pending)
        first = seq - len(pending) + 1
        ids = WorkUnit.objects.filter(batch=batch, seq__gte=first, seq__lte=seq).values_list(
            "pk", flat=True)
        replicas.write([replicas.row(workunit_id=pk, task_id=new_task_id())
                        for pk in ids for _ in range(quorum.target_nresults)])
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


def batch_create_from_jsonl(*, app_version: AppVersion, name: str, stream,
                            quorum: QuorumParams | None = None, created_by=None) -> Batch:
    """Create a batch from a JSONL upload; a malformed line names itself and creates nothing."""
    if hasattr(stream, "seek") and hasattr(stream, "read"):
        return batch_create_from_file(app_version=app_version, name=name, file=stream,
                                      quorum=quorum, created_by=created_by)
    inputs = [value for _, value in parse_jsonl(stream)]
    return batch_create(app_version=app_version, name=name, inputs=inputs, quorum=quorum,
                        created_by=created_by)


# --- batch life cycle (BOINC's pause/resume, abort_batch and retire_batch) -----------------

class BatchStateError(Exception):
    """The batch is in a state that does not allow this change."""


def _batch_locked(batch: Batch) -> Batch:
    return Batch.objects.select_for_update(no_key=True).get(pk=batch.pk)


@transaction.atomic
def batch_pause(*, batch: Batch) -> Batch:
    """Stop handing out this batch's work; tasks already out may still come back."""
    batch = _batch_locked(batch)
    if batch.state in (Batch.State.ABORTED, Batch.State.RETIRED):
        raise BatchStateError(f"The batch is {batch.state}; it can't be paused.")
    if batch.state != Batch.State.PAUSED:
        batch.state = Batch.State.PAUSED
        batch.save(update_fields=["state"])
    return batch


@transaction.atomic
def batch_resume(*, batch: Batch) -> Batch:
    batch = _batch_locked(batch)
    if batch.state in (Batch.State.ABORTED, Batch.State.RETIRED):
        raise BatchStateError(f"The batch is {batch.state}; it can't be resumed.")
    if batch.state != Batch.State.OPEN:
        batch.state = Batch.State.OPEN
        batch.save(update_fields=["state"])
    return batch


def _batch_cancel_open(batch: Batch, reason: str) -> list[Cancelled]:
    """Cancel the batch's unfinished work units and withdraw their live replicas.

    Work units first (their row locks are what reports take), then replicas, so a
    concurrent result report either finishes its work unit first or finds it
    cancelled and is judged too late.
    """
    now = timezone.now()
    WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.OPEN).update(
        state=WorkUnit.State.CANCELLED, error_reason=reason[:300], completed_at=now)
    live = Replica.objects.filter(
        workunit__batch=batch, workunit__state=WorkUnit.State.CANCELLED,
        server_state__in=[Replica.ServerState.UNSENT, Replica.ServerState.IN_PROGRESS])
    cancelled = [Cancelled(device_id=device_id, task_id=task_id) for device_id, task_id in
                 live.filter(server_state=Replica.ServerState.IN_PROGRESS,
                             device_id__isnull=False).values_list("device_id", "task_id")]
    Replica.objects.filter(pk__in=live.values("pk")).update(
        server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.DIDNT_NEED)
    return cancelled


@transaction.atomic
def batch_abort(*, batch: Batch) -> Batch:
    """Cancel every unfinished work unit; finished ones keep their results."""
    batch = _batch_locked(batch)
    if batch.state == Batch.State.RETIRED:
        raise BatchStateError("The batch is retired; there is nothing left to abort.")
    if batch.state != Batch.State.ABORTED:
        cancelled = _batch_cancel_open(batch, "The batch was aborted by its owner.")
        batch.state = Batch.State.ABORTED
        batch.save(update_fields=["state"])
        transaction.on_commit(lambda: notify_cancelled(cancelled))
    return batch


@transaction.atomic
def batch_retire(*, batch: Batch) -> Batch:
    """The owner is done with the batch: cancel what is left and close it for good.

    Its results stay downloadable; a retired batch no longer shows among active ones.
    """
    batch = _batch_locked(batch)
    if batch.state != Batch.State.RETIRED:
        cancelled = _batch_cancel_open(batch, "The batch was retired by its owner.")
        batch.state = Batch.State.RETIRED
        batch.save(update_fields=["state"])
        transaction.on_commit(lambda: notify_cancelled(cancelled))
    return batch
