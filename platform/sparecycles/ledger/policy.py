"""The public reward policy: epochs, the emission schedule, and the pro-rata split.

Pure functions over integers, shared by the services that pay, the verifier that
re-checks every payout from the journal alone, and the pages that explain it.

Rules (every amount in micro-tokens):

- Epoch i of a policy version v starts at v.starts_at + (i - v.from) * v.epoch_seconds
  and lasts v.epoch_seconds.
  Epoch 0 starts at the genesis time. The version that governs epoch i is the
  highest-numbered version whose effective_from_epoch <= i. A new version may
  only start at an epoch later than the one in progress when it is announced.
- Scheduled emission of epoch i = v.initial_emission >> (i // v.halving_epochs)
  (halving every halving_epochs epochs, counted from epoch 0), cut so that the
  total ever emitted never exceeds v.max_supply.
- The emission is split pro rata to the credit validated in the epoch:
  floor(E * c / C) each; the remainder (fewer micro-tokens than recipients)
  goes one micro-token each to the largest fractional parts (E * c mod C),
  ties broken by account code. Nothing is created or lost. An epoch without
  credit pays its emission to the treasury.
"""

import bisect
import datetime as dt
from dataclasses import asdict, dataclass

from django.conf import settings

from .canonical import from_us, to_us
from .units import MAX_SAFE_MICRO, MICRO


class PolicyError(ValueError):
    """A policy that breaks a rule; the message says which and how to fix it."""


@dataclass(frozen=True)
class PolicyParams:
    epoch_seconds: int
    initial_emission_micro: int
    halving_epochs: int
    max_supply_micro: int

    def check(self) -> "PolicyParams":
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(f"{name} must be an integer, not {value!r}")
        if not 1 <= self.epoch_seconds <= 366 * 86400:
            raise PolicyError("epoch_seconds must be between 1 and 31,622,400 (366 days)")
        if not 1 <= self.halving_epochs <= 10**9:
            raise PolicyError("halving_epochs must be between 1 and 1,000,000,000")
        if not 0 <= self.max_supply_micro <= MAX_SAFE_MICRO:
            raise PolicyError(f"max_supply_micro must be between 0 and {MAX_SAFE_MICRO}")
        if not 0 <= self.initial_emission_micro <= self.max_supply_micro:
            raise PolicyError("initial_emission_micro must be between 0 and max_supply_micro")
        return self


# The published defaults: a daily epoch emitting 14,400 tokens (10 a minute),
# halving every 730 epochs (about two years), never more than 21 million tokens.
DEFAULT_PARAMS = PolicyParams(
    epoch_seconds=86_400,
    initial_emission_micro=14_400 * MICRO,
    halving_epochs=730,
    max_supply_micro=21_000_000 * MICRO,
)


def configured_params() -> PolicyParams:
    """The genesis policy: DEFAULT_PARAMS with overrides from settings.SPARECYCLES_LEDGER."""
    overrides = getattr(settings, "SPARECYCLES_LEDGER", {}) or {}
    return PolicyParams(
        epoch_seconds=int(overrides.get("EPOCH_SECONDS", DEFAULT_PARAMS.epoch_seconds)),
        initial_emission_micro=int(overrides.get("INITIAL_EMISSION_MICRO",
                                                 DEFAULT_PARAMS.initial_emission_micro)),
        halving_epochs=int(overrides.get("HALVING_EPOCHS", DEFAULT_PARAMS.halving_epochs)),
        max_supply_micro=int(overrides.get("MAX_SUPPLY_MICRO", DEFAULT_PARAMS.max_supply_micro)),
    ).check()


def configured_genesis(now: dt.datetime, epoch_seconds: int) -> dt.datetime:
    """settings.SPARECYCLES_LEDGER["GENESIS"] (ISO 8601 or a datetime), else `now`
    rounded down to a multiple of the epoch length (midnight UTC for daily epochs)."""
    value = (getattr(settings, "SPARECYCLES_LEDGER", {}) or {}).get("GENESIS")
    if value:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    step = epoch_seconds * 1_000_000
    return from_us(to_us(now) // step * step)


@dataclass(frozen=True)
class PolicyRecord:
    """One announced version, as it stands in the journal."""

    version: int
    effective_from_epoch: int
    starts_at_us: int      # when its first epoch starts
    params: PolicyParams

    def as_data(self) -> dict:
        return {"version": self.version, "effective_from_epoch": self.effective_from_epoch,
                "starts_at": self.starts_at_us, **asdict(self.params)}

    @classmethod
    def from_data(cls, data: dict) -> "PolicyRecord":
        params = PolicyParams(**{k: data[k] for k in PolicyParams.__dataclass_fields__})
        return cls(version=data["version"], effective_from_epoch=data["effective_from_epoch"],
                   starts_at_us=data["starts_at"], params=params)


@dataclass(frozen=True)
class EpochWindow:
    index: int
    start_us: int
    end_us: int
    policy: PolicyRecord

    @property
    def starts_at(self) -> dt.datetime:
        return from_us(self.start_us)

    @property
    def ends_at(self) -> dt.datetime:
        return from_us(self.end_us)


class Schedule:
    """The epoch calendar and emission schedule defined by a list of policy versions."""

    def __init__(self, records: list[PolicyRecord]):
        self.records = sorted(records, key=lambda r: r.version)
        # Later versions cut off earlier ones from their effective epoch on.
        segments: list[PolicyRecord] = []
        for record in self.records:
            segments = [s for s in segments if s.effective_from_epoch < record.effective_from_epoch]
            segments.append(record)
        self.segments = segments
        self._froms = [s.effective_from_epoch for s in segments]
        self._starts = [s.starts_at_us for s in segments]

    def __bool__(self) -> bool:
        return bool(self.segments)

    @property
    def genesis_us(self) -> int:
        return self.segments[0].starts_at_us

    def governing(self, index: int) -> PolicyRecord:
        if index < 0 or not self.segments:
            raise PolicyError(f"no policy governs epoch {index}")
        return self.segments[bisect.bisect_right(self._froms, index) - 1]

    def window(self, index: int) -> EpochWindow:
        policy = self.governing(index)
        length = policy.params.epoch_seconds * 1_000_000
        start = policy.starts_at_us + (index - policy.effective_from_epoch) * length
        return EpochWindow(index=index, start_us=start, end_us=start + length, policy=policy)

    def epoch_at(self, moment_us: int) -> int:
        """The index of the epoch in progress at moment_us; -1 before genesis."""
        if not self.segments or moment_us < self.segments[0].starts_at_us:
            return -1
        policy = self.segments[bisect.bisect_right(self._starts, moment_us) - 1]
        length = policy.params.epoch_seconds * 1_000_000
        return policy.effective_from_epoch + (moment_us - policy.starts_at_us) // length

    def emission(self, index: int, *, emitted_before: int) -> int:
        """What epoch `index` emits, given what all earlier epochs emitted."""
        params = self.governing(index).params
        era = index // params.halving_epochs
        scheduled = params.initial_emission_micro >> era if era < 64 else 0
        return max(0, min(scheduled, params.max_supply_micro - emitted_before))

    def projection(self) -> list[dict]:
        """Breakpoints of the schedule from genesis: where the per-epoch emission changes.

        Each point: epoch, start_us, emission (per epoch from there on),
        supply_before. Exact, because every epoch pays its emission (to the
        treasury when nobody earned credit). The last point has emission 0: the
        schedule is over. Jumps a whole era at a time, so it is cheap.
        """
        points: list[dict] = []

        def point(index: int, amount: int, emitted: int) -> None:
            if points and points[-1]["emission"] == amount:
                return
            points.append({"epoch": index, "start_us": self.window(index).start_us,
                           "emission": amount, "supply_before": emitted})

        last_from = self._froms[-1] if self._froms else 0
        index, emitted = 0, 0
        while self.segments:
            policy = self.governing(index)
            params = policy.params
            later = [f for f in self._froms if f > index]
            stop = min([(index // params.halving_epochs + 1) * params.halving_epochs, *later])
            era = index // params.halving_epochs
            scheduled = params.initial_emission_micro >> era if era < 64 else 0
            room = max(0, params.max_supply_micro - emitted)
            if min(scheduled, room) == 0:
                point(index, 0, emitted)
                if index >= last_from:
                    break
                index = later[0]
                continue
            count = stop - index
            if scheduled * count <= room:
                point(index, scheduled, emitted)
                emitted += scheduled * count
                index = stop
                continue
            full = room // scheduled
            if full:
                point(index, scheduled, emitted)
                emitted += full * scheduled
                index += full
            if room - full * scheduled:
                point(index, room - full * scheduled, emitted)
                emitted += room - full * scheduled
                index += 1
        return points


def split_pro_rata(total: int, credits: list[tuple[str, int]]) -> dict[str, int]:
    """Split `total` micro-tokens by credit, exactly (see the module docstring)."""
    if total < 0:
        raise ValueError("cannot split a negative amount")
    positive = [(code, credit) for code, credit in credits if credit > 0]
    whole = sum(credit for _, credit in positive)
    if not positive or total == 0:
        return {}
    shares = {code: total * credit // whole for code, credit in positive}
    remainder = total - sum(shares.values())
    order = sorted(positive, key=lambda item: (-(total * item[1] % whole), item[0]))
    for code, _ in order[:remainder]:
        shares[code] += 1
    return {code: amount for code, amount in shares.items() if amount}
