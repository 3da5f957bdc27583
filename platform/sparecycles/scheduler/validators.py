"""Deciding whether two outputs agree (BOINC's check_pair) and picking a canonical set
(check_set)."""

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

Comparator = Callable[[Any, Any], bool]


def exact_equal(a: Any, b: Any) -> bool:
    """Equal as JSON documents (key order does not matter; 1 and true differ)."""
    return _canonical_json(a) == _canonical_json(b)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def tolerance_equal(a: Any, b: Any, *, abs_tol: float = 0.0, rel_tol: float = 0.0) -> bool:
    """Walk two JSON trees; numbers may differ by abs_tol or rel_tol, everything else must match.

    Iterative, not recursive: a volunteer's output nested thousands deep is compared like
    any other (no RecursionError)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if _is_number(x) and _is_number(y):
            if math.isnan(x) or math.isnan(y):
                if not (math.isnan(x) and math.isnan(y)):
                    return False
            elif not math.isclose(x, y, rel_tol=rel_tol, abs_tol=abs_tol):
                return False
        elif isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif not (type(x) is type(y) and x == y):
            return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def comparator_for(*, validator: str, options: dict | None, code: str = "",
                   app_id: int | None = None) -> Comparator:
    options = options or {}
    if validator == "tolerance":
        abs_tol = float(options.get("abs_tol", 0.0))
        rel_tol = float(options.get("rel_tol", 0.0))
        return _guarded(lambda a, b: tolerance_equal(a, b, abs_tol=abs_tol, rel_tol=rel_tol))
    if validator == "custom":
        # Owner code: only ever run in the sandbox (docs/sandbox.md). Its comparator raises
        # sandbox.errors.ValidatorError when the validator can't judge.
        from sparecycles.sandbox.judging import SandboxComparator

        return SandboxComparator(code, app_id=app_id)
    return _guarded(exact_equal)


def _guarded(equal: Comparator) -> Comparator:
    """A built-in comparator that fails on one pair (outputs it can't handle, e.g. too
    deep for json.dumps) says "not equal" for that pair: the failure stays with the work
    unit of the outputs that caused it, never the validation pass of everyone's."""

    def guarded(a: Any, b: Any) -> bool:
        try:
            return equal(a, b)
        except Exception:  # noqa: BLE001 - any failure on hostile input is "not equal"
            return False

    return guarded


def check_set(outputs: Sequence[Any], equal: Comparator, *, min_quorum: int) -> list[int] | None:
    """Indexes of the agreeing group that forms a canonical set, or None.

    The group must hold at least min_quorum results and a strict majority of
    all results compared, so two colluders can't outvote three honest ones.
    """
    prefetch = getattr(equal, "prefetch", None)
    if prefetch is not None:  # a sandboxed validator: every pair in one round trip
        prefetch([(a, b) for i, a in enumerate(outputs) for j, b in enumerate(outputs) if i != j])
    best: list[int] = []
    for i, candidate in enumerate(outputs):
        group = [j for j, other in enumerate(outputs) if j == i or equal(candidate, other)]
        if len(group) > len(best):
            best = group
    if len(best) >= min_quorum and 2 * len(best) > len(outputs):
        return best
    return None


def advance_pairs(workunit, replicas) -> list[tuple[Any, Any]]:
    """Every comparison a transition of `workunit` may make, as (a, b) output pairs: what
    a sandboxed validator judges in advance (the transitioner's pairwise calls then cost
    nothing)."""
    from .models import Replica

    O, V = Replica.Outcome, Replica.ValidateState  # noqa: N806 - the models' short names
    state = type(workunit).State
    fresh = [r.output for r in replicas if r.outcome == O.SUCCESS and r.validate_state == V.INIT]
    if workunit.is_spot_check:  # no known answer: withdrawn, nothing to compare with
        known = workunit.known_output
        return [] if known is None else [(known, output) for output in fresh]
    if workunit.state == state.COMPLETED:
        return [(workunit.canonical_output, output) for output in fresh]
    if workunit.state == state.OPEN:
        outputs = [r.output for r in replicas if r.outcome == O.SUCCESS
                   and r.validate_state in (V.INIT, V.INCONCLUSIVE)]
        return [(a, b) for i, a in enumerate(outputs) for j, b in enumerate(outputs) if i != j]
    return []


def validation_plan(workunit_ids) -> tuple[list[int], list[list[int]], list[int]]:
    """Split a validation pass so that no owner's custom validator delays anyone else:
    (work units with a built-in validator, validated first in a transaction of their own;
    one list per custom-validator app, each its own transaction; deferred work units).

    A custom app's comparisons are judged HERE, before any row lock, within
    SANDBOX["WORKUNIT_BUDGET_S"] per work unit and SANDBOX["APP_BUDGET_S"] per app: a work
    unit whose comparisons don't fit is deferred (its results stay pending; the verdicts
    made so far are kept, so the next pass goes on from there). A validator that fails is
    not deferred: its transition records the reason and the breaker."""
    from django.conf import settings

    from sparecycles.projects.models import WorkUnit
    from sparecycles.sandbox.errors import BudgetSpent, ValidatorError
    from sparecycles.sandbox.judging import SandboxComparator
    from sparecycles.sandbox.pool import pool

    from .models import Replica

    workunits = list(WorkUnit.objects.filter(pk__in=list(workunit_ids))
                     .select_related("app_version__app").order_by("pk"))
    builtin = [w.pk for w in workunits if w.app_version.app.validator != "custom"]
    custom = [w for w in workunits if w.app_version.app.validator == "custom"]
    replicas: dict[int, list] = {w.pk: [] for w in custom}
    for replica in Replica.objects.filter(workunit_id__in=list(replicas)).order_by("id"):
        replicas[replica.workunit_id].append(replica)
    by_app: dict[int, list[int]] = {}
    spent: dict[int, float] = {}
    deferred = []
    config = settings.SANDBOX
    for workunit in custom:
        app = workunit.app_version.app
        pairs = advance_pairs(workunit, replicas[workunit.pk])
        if pairs:
            # A cold start (seconds) happens here, outside any lock, and is not judging
            # time: it does not count against the budgets. A failure is the breaker's.
            pool.warm(app.validate_code, app_id=app.pk)
        left = config["APP_BUDGET_S"] - spent.get(app.pk, 0.0)
        equal = SandboxComparator(app.validate_code, app_id=app.pk)
        started = time.monotonic()
        try:
            equal.prefetch(pairs, budget_s=max(min(config["WORKUNIT_BUDGET_S"], left), 0.0))
        except BudgetSpent:
            deferred.append(workunit.pk)
            continue
        except ValidatorError:
            pass   # the transition records why; the breaker makes the retry instant
        finally:
            spent[app.pk] = spent.get(app.pk, 0.0) + time.monotonic() - started
        by_app.setdefault(app.pk, []).append(workunit.pk)
    return builtin, list(by_app.values()), deferred
