"""Writes for projects: app versions, batches and their work units."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from sparecycles.scheduler.models import Replica

from .models import App, AppVersion, Batch, Runtime, WorkUnit

MAX_INPUT_BYTES = 256 * 1024
MAX_REPORTED_ERRORS = 20
BULK_SIZE = 1000


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
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a whole number of at least 1.")
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
        raise ValidationError(f"main.py has a syntax error on line {exc.lineno}: {exc.msg}.") from None
    if f"def {entry}(" not in source:
        raise ValidationError(f"main.py does not define the entry function {entry}(input).")


@transaction.atomic
def app_version_create(*, app: App, code: bytes, runtime: str = Runtime.PYODIDE,
                       entry: str = "main", packages: list[str] | None = None,
                       flops_per_unit: float = 1e9) -> AppVersion:
    """Add the next immutable version of `app`."""
    app_code_check(code=code, runtime=runtime, entry=entry)
    App.objects.select_for_update().filter(pk=app.pk).first()  # serialise version numbers
    number = (app.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return AppVersion.objects.create(
        app=app, number=number, runtime=runtime, entry=entry, code=code,
        packages=packages or [], flops_per_unit=flops_per_unit,
    )


def parse_jsonl(stream: IO[bytes] | Iterable[bytes | str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, input) for each non-blank line; raise ValidationError naming bad lines.

    Every line is checked before anything is created; up to MAX_REPORTED_ERRORS are reported.
    """
    errors: list[str] = []
    inputs: list[tuple[int, Any]] = []
    for number, raw in enumerate(stream, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(f"Line {number}: not UTF-8 text.")
                continue
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_INPUT_BYTES:
            errors.append(f"Line {number}: longer than {MAX_INPUT_BYTES // 1024} KiB.")
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            errors.append(f"Line {number}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        if not isinstance(value, dict):
            errors.append(f"Line {number}: each line must be a JSON object, like {{\"n\": 1}}.")
            continue
        inputs.append((number, value))
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        if more:
            shown.append(f"…and {more} more bad lines.")
        raise ValidationError(shown)
    if not inputs:
        raise ValidationError("The file holds no work units: put one JSON object per line.")
    yield from inputs


@transaction.atomic
def batch_create(*, app_version: AppVersion, name: str, inputs: Iterable[dict],
                 quorum: QuorumParams | None = None, created_by=None) -> Batch:
    """Create a batch and one work unit per input, each with target_nresults unsent replicas.

    All or nothing: any error rolls the whole batch back.
    """
    quorum = quorum or QuorumParams()
    quorum.check()
    if not name.strip():
        raise ValidationError("The batch needs a name.")
    batch = Batch.objects.create(app_version=app_version, name=name.strip()[:200],
                                 created_by=created_by)
    pending: list[WorkUnit] = []
    seq = 0
    for value in inputs:
        seq += 1
        pending.append(WorkUnit(batch=batch, app_version=app_version, seq=seq, input=value,
                                **quorum.__dict__))
        if len(pending) >= BULK_SIZE:
            _insert(pending, quorum.target_nresults)
            pending = []
    if pending:
        _insert(pending, quorum.target_nresults)
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


def _insert(workunits: list[WorkUnit], replicas_each: int) -> None:
    created = WorkUnit.objects.bulk_create(workunits)
    if any(wu.pk is None for wu in created):  # backends that don't return ids
        batch = workunits[0].batch
        seqs = [wu.seq for wu in workunits]
        created = list(WorkUnit.objects.filter(batch=batch, seq__in=seqs))
    Replica.objects.bulk_create(
        [Replica(workunit=wu) for wu in created for _ in range(replicas_each)]
    )


def batch_create_from_jsonl(*, app_version: AppVersion, name: str, stream,
                            quorum: QuorumParams | None = None, created_by=None) -> Batch:
    """Create a batch from a JSONL upload; a malformed line names itself and creates nothing."""
    inputs = [value for _, value in parse_jsonl(stream)]
    return batch_create(app_version=app_version, name=name, inputs=inputs, quorum=quorum,
                        created_by=created_by)
