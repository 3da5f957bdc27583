"""Judging results with an owner's equivalent(a, b), through the sandbox.

`SandboxComparator` is what `scheduler.validators.comparator_for(validator="custom")`
returns: a callable (a, b) -> bool like the built-in comparators, plus `prefetch`,
which judges many pairs and remembers the verdicts, so the transitioner's pairwise
calls cost nothing more. If equivalent(a, b) raises on a pair — any exception,
RecursionError included — that pair is not equivalent (a cheater may send anything; a
validator must not choke on it, and one volunteer's output must not pause an honest
app). An output nested deeper than wire.MAX_OUTPUT_DEPTH (stored before that
limit existed) is not equivalent to anything and never enters the sandbox. Only
process-level failures (time-out, memory, crash, load error, a non-bool) raise
ValidatorError and count against the validator.

Judging has a time budget: SANDBOX["WORKUNIT_BUDGET_S"] for one work unit's pairs.
When it runs out, BudgetSpent is raised (no breaker trip); the verdicts so far are kept
in the pool's memo, so the next pass resumes where this one stopped.

`validator_check` is the check on save: the code loads in the sandbox, defines
equivalent, and answers trivial pairs with a bool, within the limits.
"""

import json
from typing import Any

from django.conf import settings

from sparecycles.wire import output_problem

from .errors import BudgetSpent, ValidatorError
from .pool import code_key, pool

TRIVIAL_PAIRS = [(None, None), ({}, {})]


def _key(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    except (RecursionError, ValueError, TypeError):
        return f"unjudgeable:{id(value)}"   # too deep even to key: judged False below


def pairs_judge(*, code: str, pairs: list[tuple[Any, Any]], app_id: int | None = None,
                budget_s: float | None = None) -> list[bool]:
    """Verdicts for `pairs` (equivalent raising counts as False); ValidatorError if the
    validator could not judge, BudgetSpent if `budget_s` seconds of judging were not
    enough (the verdicts made are remembered). Each distinct output crosses into the
    sandbox once per call; pairs judged before for this app's code are not judged again."""
    key = code_key(code, app_id)
    keys = [(_key(a), _key(b)) for a, b in pairs]
    verdicts: list[bool | None] = [pool.verdict(key, ka, kb) for ka, kb in keys]
    outputs: list[Any] = []
    index: dict[str, int] = {}

    def place(value_key: str, value: Any) -> int:
        if value_key not in index:
            index[value_key] = len(outputs)
            outputs.append(value)
        return index[value_key]

    todo: dict[tuple[str, str], tuple[int, int]] = {}
    for (a, b), (ka, kb), verdict in zip(pairs, keys, verdicts, strict=True):
        if verdict is not None or (ka, kb) in todo:
            continue
        if output_problem(a) or output_problem(b):
            pool.remember(key, ka, kb, False)
            continue
        todo[(ka, kb)] = (place(ka, a), place(kb, b))
    if todo and budget_s is not None and budget_s <= 0:
        pool.breaker_check(code, app_id=app_id)   # a broken validator says so, not "later"
        raise BudgetSpent("this pass's time for the custom validator is spent; its "
                          "comparisons follow in the next passes.")
    if todo:
        with pool.lend(code, app_id=app_id) as process:
            replies = process.judge(outputs, list(todo.values()), budget_s=budget_s)
        for (ka, kb), reply in zip(todo, replies, strict=False):
            pool.remember(key, ka, kb, reply.get("verdict") is True)
        if len(replies) < len(todo):
            raise BudgetSpent(
                f"the custom validator needs more than {budget_s:g} s for this work unit's "
                f"comparisons ({len(replies)} of {len(todo)} judged this pass); the rest "
                f"follow in the next passes.")
    result = []
    for (ka, kb), verdict in zip(keys, verdicts, strict=True):
        if verdict is None:
            verdict = pool.verdict(key, ka, kb)
        result.append(verdict is True)
    return result


class SandboxComparator:
    """equal(a, b) for one app's validator code, memoised; one instance per work unit
    pass. Each prefetch has SANDBOX["WORKUNIT_BUDGET_S"] seconds unless told otherwise."""

    def __init__(self, code: str, *, app_id: int | None = None,
                 budget_s: float | None = None):
        self.code = code
        self.app_id = app_id
        self.budget_s = (settings.SANDBOX["WORKUNIT_BUDGET_S"] if budget_s is None
                         else budget_s)
        self._verdicts: dict[tuple[str, str], bool] = {}

    def prefetch(self, pairs: list[tuple[Any, Any]], *, budget_s: float | None = None) -> None:
        todo: dict[tuple[str, str], tuple[Any, Any]] = {}
        for a, b in pairs:
            key = (_key(a), _key(b))
            if key not in self._verdicts:
                todo.setdefault(key, (a, b))
        verdicts = pairs_judge(code=self.code, pairs=list(todo.values()), app_id=self.app_id,
                               budget_s=self.budget_s if budget_s is None else budget_s)
        for key, verdict in zip(todo, verdicts, strict=True):
            self._verdicts[key] = verdict

    def __call__(self, a: Any, b: Any) -> bool:
        key = (_key(a), _key(b))
        if key not in self._verdicts:
            self.prefetch([(a, b)])
        return self._verdicts[key]


def validator_check(*, code: str, app_id: int | None = None) -> None:
    """ValidatorError with the reason if `code` can't serve as a custom validator.

    Runs only in the sandbox, in a warm process of this app's code if there is one (a
    fresh one otherwise), without the breaker so the owner sees a fresh verdict; the
    process then stays warm for the validations to come. The reason holds only what the
    owner's own code said (exception type and message), never details of the host."""
    outputs = [value for pair in TRIVIAL_PAIRS for value in pair]
    pairs = [(2 * i, 2 * i + 1) for i in range(len(TRIVIAL_PAIRS))]
    with pool.lend(code, app_id=app_id, breaker=False) as process:
        replies = process.judge(outputs, pairs)
    for (a, b), reply in zip(TRIVIAL_PAIRS, replies, strict=True):
        if "raised" in reply:
            raised = str(reply["raised"]).splitlines()[0][:200] if reply["raised"] else ""
            raise ValidatorError(
                f"equivalent({json.dumps(a)}, {json.dumps(b)}) raised {raised}. "
                "A validator must return False for results it can't read: a dishonest "
                "volunteer may send anything.")
    pool.forget(code, app_id=app_id)
