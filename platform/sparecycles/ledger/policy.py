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
- Without project shares (the policy names none), the emission is split pro
  rata to the credit validated in the epoch:
  floor(E * c / C) each; the remainder (fewer micro-tokens than recipients)
  goes one micro-token each to the largest fractional parts (E * c mod C),
  ties broken by account code. Nothing is created or lost. An epoch without
  credit pays its emission to the treasury.
- With project shares (`project_shares`: [["project-<id>", parts per million],
  ...], set by the operator), project p is allotted floor(E * share_p / 10^6)
  and that allotment is split pro rata, as above, among the volunteers by the
  credit validated in the epoch *for project p*. An allotment without credit,
  the unallotted parts and the rounding all go to the treasury. So credit
  inflated in one project only divides that project's allotment: it never
  takes another project's tokens (`split_by_project`).
"""

import bisect
import datetime as dt
import re
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.conf import settings

from .canonical import from_us, to_us
from .units import MAX_SAFE_MICRO, MICRO


class PolicyError(ValueError):
    """A policy that breaks a rule; the message says which and how to fix it."""


SHARE_WHOLE = 1_000_000  # project shares are parts per million of an epoch's emission
PROJECT_CODE = re.compile(r"^project-[1-9][0-9]{0,17}$")
Shares = tuple[tuple[str, int], ...]


def project_code(project_id: int) -> str:
    return f"project-{project_id}"


def shares_check(shares) -> Shares:
    """Project shares as the journal holds them: sorted distinct codes, each share a positive
    integer of parts per million, summing to at most 10^6."""
    if not isinstance(shares, (list, tuple)):
        raise PolicyError("project_shares must be a list of [project-<id>, parts per million]")
    pairs = []
    for item in shares:
        if not isinstance(item, (list, tuple)) or len(item) != 2 \
                or not isinstance(item[0], str) or not PROJECT_CODE.match(item[0]) \
                or isinstance(item[1], bool) or not isinstance(item[1], int) \
                or not 0 < item[1] <= SHARE_WHOLE:
            raise PolicyError(f"a project share is [project-<id>, 1..{SHARE_WHOLE}], "
                              f"not {item!r}")
        pairs.append((item[0], item[1]))
    if [code for code, _ in pairs] != sorted({code for code, _ in pairs}):
        raise PolicyError("project shares must name distinct projects, sorted by code")
    if sum(share for _, share in pairs) > SHARE_WHOLE:
        raise PolicyError("project shares add up to more than the whole emission "
                          f"({SHARE_WHOLE} parts per million)")
    return tuple(pairs)


@dataclass(frozen=True)
class PolicyParams:
    epoch_seconds: int
    initial_emission_micro: int
    halving_epochs: int
    max_supply_micro: int
    # None: one site-wide split by credit (the policy before shares existed).
    project_shares: Shares | None = None

    def check(self) -> "PolicyParams":
        for name, value in asdict(self).items():
            if name == "project_shares":
                if value is not None:
                    shares_check(value)
                continue
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
        params = asdict(self.params)
        shares = params.pop("project_shares")
        if shares is not None:  # absent, not null, so entries made before shares hash alike
            params["project_shares"] = [[code, share] for code, share in shares]
        return {"version": self.version, "effective_from_epoch": self.effective_from_epoch,
                "starts_at": self.starts_at_us, **params}

    @classmethod
    def from_data(cls, data: dict) -> "PolicyRecord":
        params = PolicyParams(
            **{k: data[k] for k in PolicyParams.__dataclass_fields__ if k != "project_shares"},
            project_shares=(None if data.get("project_shares") is None
                            else tuple(tuple(pair) for pair in data["project_shares"])))
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


def project_payouts(total: int, *, shares: Shares,
                    credits: dict[str, list[tuple[str, int]]]) -> dict[str, dict[str, int]]:
    """What each project's allotment paid each volunteer account (`split_by_project`
    without the treasury's part): a clawback takes back per (project, account)."""
    if total < 0:
        raise ValueError("cannot split a negative amount")
    paid: dict[str, dict[str, int]] = {}
    for code, share in shares:
        part = split_pro_rata(total * share // SHARE_WHOLE, credits.get(code, []))
        if part:
            paid[code] = part
    return paid


def split_by_project(total: int, *, shares: Shares,
                     credits: dict[str, list[tuple[str, int]]]) -> dict[str, int]:
    """Split `total` by the operator's project shares, then within each project by credit.

    `credits` maps a project code to its [(volunteer account, credit)] in the epoch.
    Returns payouts per account, the treasury's included; they sum to `total` exactly.
    """
    payouts: dict[str, int] = defaultdict(int)
    for part in project_payouts(total, shares=shares, credits=credits).values():
        for account, amount in part.items():
            payouts[account] += amount
    rest = total - sum(payouts.values())
    if rest:
        payouts["treasury"] += rest
    return dict(payouts)
