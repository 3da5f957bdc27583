"""How a simulated volunteer behaves: one small strategy object per volunteer.

The client asks its behaviour four questions and does the rest itself:

- `plan(task)`: compute honestly ("compute"), report an error ("error") or make
  an answer up without computing ("fabricate");
- `alter(task, output)`: what to report once the real output is known;
- `hold_s(task)`: how long to sit on a finished task before reporting it;
- `vanish_on(tasks)`: close the socket now, without answering?

A behaviour whose `requests_work` is false (idle) never asks for tasks: it only
says hello and keeps its socket alive with heartbeat pings, so a benchmark can
hold thousands of connections for the price of a few busy ones.

Every random choice comes from the volunteer's own `random.Random`, so a
seeded swarm makes the same choices run after run (thread timing aside).
"""

import copy
import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any, Literal

Plan = Literal["compute", "error", "fabricate"]


@dataclass(frozen=True)
class BehaviourOptions:
    """Knobs for the behaviours that have any; the defaults suit a load run."""

    flaky_error_p: float = 0.5
    # slow: hold each finished task until `slow_overrun_s` past its deadline,
    # but never longer than `slow_max_hold_s` (the run's duration bounds it too).
    slow_overrun_s: float = 2.0
    slow_max_hold_s: float = 120.0
    # vanishing: close the socket on receiving tasks this many times, then
    # come back (same token) after `vanish_return_after_s` with probability
    # `vanish_return_p`, or never.
    vanish_times: int = 1
    vanish_return_p: float = 0.5
    vanish_return_after_s: float = 2.0
    # honest: sit on each finished task for about this long (0.5-1.5 x), as if computing
    # took that long: paces the load, e.g. to measure latency below saturation.
    think_s: float = 0.0

    def check(self) -> None:
        problems = []
        for name in ("flaky_error_p", "vanish_return_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1")
        for name in ("slow_overrun_s", "slow_max_hold_s", "vanish_return_after_s", "think_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.vanish_times < 0:
            problems.append("vanish_times must not be negative")
        if problems:
            raise ValueError("; ".join(problems) + ".")


class Behaviour:
    """Honest by default; subclasses override what they do differently."""

    name = "honest"
    requests_work = True  # False: never asks for tasks (see Idle)

    def __init__(self, rng: random.Random, options: BehaviourOptions):
        self.rng = rng
        self.options = options

    def plan(self, task: dict, *, have_template: bool) -> Plan:
        return "compute"

    def alter(self, task: dict, output: Any) -> Any:
        return output

    def fabricate(self, task: dict, template: Any) -> Any:
        raise NotImplementedError

    def error_message(self, task: dict) -> str:
        return ""

    def hold_s(self, task: dict) -> float:
        return 0.0

    def vanish_on(self, tasks: list[dict]) -> bool:
        return False

    def comes_back_after_s(self) -> float | None:
        """After vanishing: seconds until the volunteer reconnects, or None for never."""
        return None


class Honest(Behaviour):
    name = "honest"

    def hold_s(self, task: dict) -> float:
        think = self.options.think_s
        return think * self.rng.uniform(0.5, 1.5) if think > 0 else 0.0


class Idle(Behaviour):
    """Connected and alive, never asking for work: a tab left open on a page with no task."""

    name = "idle"
    requests_work = False


class Cheater(Behaviour):
    """Random wrong answers, different every time; computes only to learn an output's shape."""

    name = "cheater"

    def plan(self, task: dict, *, have_template: bool) -> Plan:
        return "fabricate" if have_template else "compute"

    def alter(self, task: dict, output: Any) -> Any:
        return self.fabricate(task, output)

    def fabricate(self, task: dict, template: Any) -> Any:
        return randomised(template, task.get("input"), self.rng)


class Colluder(Behaviour):
    """The same wrong answer as every other colluder: the real one, altered by a hash of the input.

    Two colluders drawn for one work unit agree, so at quorum 2 they win; this
    is the attack spot checks and reputation are there to catch.
    """

    name = "colluder"

    def alter(self, task: dict, output: Any) -> Any:
        return colluded(output, task.get("input"))


class Flaky(Behaviour):
    """Reports an error instead of computing, with probability `flaky_error_p`."""

    name = "flaky"

    def plan(self, task: dict, *, have_template: bool) -> Plan:
        return "error" if self.rng.random() < self.options.flaky_error_p else "compute"

    def error_message(self, task: dict) -> str:
        return "SimulatedError: this flaky volunteer failed the task on purpose"


class Slow(Behaviour):
    """Computes honestly but reports only after the deadline has passed."""

    name = "slow"

    def hold_s(self, task: dict) -> float:
        left = seconds_until(task.get("deadline"))
        return min(max(left, 0.0) + self.options.slow_overrun_s, self.options.slow_max_hold_s)


class Vanishing(Behaviour):
    """Closes the socket as soon as tasks arrive, then maybe comes back with the same token."""

    name = "vanishing"

    def __init__(self, rng: random.Random, options: BehaviourOptions):
        super().__init__(rng, options)
        self.vanished = 0

    def vanish_on(self, tasks: list[dict]) -> bool:
        if tasks and self.vanished < self.options.vanish_times:
            self.vanished += 1
            return True
        return False

    def comes_back_after_s(self) -> float | None:
        if self.rng.random() < self.options.vanish_return_p:
            return self.options.vanish_return_after_s
        return None


BEHAVIOURS: dict[str, type[Behaviour]] = {
    cls.name: cls for cls in (Honest, Cheater, Colluder, Flaky, Slow, Vanishing, Idle)
}


def behaviour_create(name: str, *, rng: random.Random, options: BehaviourOptions) -> Behaviour:
    try:
        cls = BEHAVIOURS[name]
    except KeyError:
        raise ValueError(f"Unknown behaviour {name!r}; choose from {', '.join(BEHAVIOURS)}."
                         ) from None
    return cls(rng, options)


# --- making wrong answers -------------------------------------------------------------

def _echoed_keys(output: Any, input: Any) -> set[str]:
    """Top-level output keys that merely repeat the input (e.g. lo, hi, tile)."""
    if not isinstance(output, dict) or not isinstance(input, dict):
        return set()
    return {k for k in output if k in input}


def randomised(template: Any, input: Any, rng: random.Random) -> Any:
    """A made-up output shaped like `template`: echoed input fields, every number random."""
    echoed = _echoed_keys(template, input)
    changed = False

    def noise(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        if isinstance(value, int):
            changed = True
            return rng.randrange(0, 2 * abs(value) + 1000)
        if isinstance(value, float):
            changed = True
            return value * rng.uniform(0.5, 1.5) + rng.random()
        if isinstance(value, list):
            return [noise(v) for v in value]
        if isinstance(value, dict):
            return {k: noise(v) for k, v in value.items()}
        return value

    if isinstance(template, dict):
        result = {k: (input[k] if k in echoed else noise(v)) for k, v in template.items()}
    else:
        result = noise(template)
    if not changed:  # nothing numeric to scramble: still make it wrong
        result = {"output": result, "noise": rng.getrandbits(52)}
    return result


def input_digest(input: Any) -> int:
    encoded = json.dumps(input, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big")


def colluded(output: Any, input: Any) -> Any:
    """`output` with one number moved by a nonzero amount derived from the input's hash."""
    shift = input_digest(input) % 997 + 1
    altered = copy.deepcopy(output)
    echoed = _echoed_keys(output, input)

    def first_number(value: Any, path: tuple) -> tuple | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return path
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                if not path and key in echoed:
                    continue
                found = first_number(value[key], (*path, key))
                if found is not None:
                    return found
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = first_number(item, (*path, index))
                if found is not None:
                    return found
        return None

    path = first_number(altered, ())
    if path is None:
        return {"output": altered, "collusion": shift}
    if not path:
        return altered + shift
    parent = altered
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] += shift
    return altered


def seconds_until(deadline: str | None) -> float:
    """Seconds from now until an RFC 3339 deadline ("2026-12-01T10:00:00Z"); 0 if unreadable."""
    if not deadline:
        return 0.0
    try:
        when = dt.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - dt.datetime.now(dt.UTC)).total_seconds()
