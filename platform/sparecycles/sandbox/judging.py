"""Judging results with an owner's equivalent(a, b), through the sandbox.

`SandboxComparator` is what `scheduler.validators.comparator_for(validator="custom")`
returns: a callable (a, b) -> bool like the built-in comparators, plus `prefetch`,
which judges many pairs in one round trip and remembers the verdicts, so the
transitioner's pairwise calls cost nothing more. If equivalent(a, b) raises, the pair
is not equivalent (a cheater may send anything; a validator must not choke on it).
Everything else that goes wrong raises ValidatorError.

`validator_check` is the check on save: the code loads in the sandbox, defines
equivalent, and answers trivial pairs with a bool, within the limits.
"""

import json
from typing import Any

from .errors import ValidatorError
from .pool import pool

TRIVIAL_PAIRS = [(None, None), ({}, {})]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def pairs_judge(*, code: str, pairs: list[tuple[Any, Any]]) -> list[bool]:
    """Verdicts for `pairs` (equivalent raising counts as False); ValidatorError if the
    validator could not judge. Each distinct output crosses into the sandbox once."""
    outputs: list[Any] = []
    index: dict[str, int] = {}

    def place(value: Any) -> int:
        key = _key(value)
        if key not in index:
            index[key] = len(outputs)
            outputs.append(value)
        return index[key]

    indexed = [(place(a), place(b)) for a, b in pairs]
    if not indexed:
        return []
    with pool.lend(code) as process:
        replies = process.judge(outputs, indexed)
    return [reply.get("verdict") is True for reply in replies]


class SandboxComparator:
    """equal(a, b) for one validator's code, memoised; one instance per work unit pass."""

    def __init__(self, code: str):
        self.code = code
        self._verdicts: dict[tuple[str, str], bool] = {}

    def prefetch(self, pairs: list[tuple[Any, Any]]) -> None:
        todo: dict[tuple[str, str], tuple[Any, Any]] = {}
        for a, b in pairs:
            key = (_key(a), _key(b))
            if key not in self._verdicts:
                todo.setdefault(key, (a, b))
        verdicts = pairs_judge(code=self.code, pairs=list(todo.values()))
        for key, verdict in zip(todo, verdicts, strict=True):
            self._verdicts[key] = verdict

    def __call__(self, a: Any, b: Any) -> bool:
        key = (_key(a), _key(b))
        if key not in self._verdicts:
            self.prefetch([(a, b)])
        return self._verdicts[key]


def validator_check(*, code: str) -> None:
    """ValidatorError with the reason if `code` can't serve as a custom validator.

    Runs only in the sandbox: a fresh process (no breaker, so the owner sees a fresh
    verdict), which then stays warm for the validations to come."""
    outputs = [value for pair in TRIVIAL_PAIRS for value in pair]
    pairs = [(2 * i, 2 * i + 1) for i in range(len(TRIVIAL_PAIRS))]
    with pool.lend(code, breaker=False) as process:
        replies = process.judge(outputs, pairs)
    for (a, b), reply in zip(TRIVIAL_PAIRS, replies, strict=True):
        if "raised" in reply:
            raise ValidatorError(
                f"equivalent({json.dumps(a)}, {json.dumps(b)}) raised {reply['raised']}. "
                "A validator must return False for results it can't read: a dishonest "
                "volunteer may send anything.")
    pool.forget(code)
