"""What dispatch asks about a device's trustworthiness, answered by validation.

Validation sits above the scheduler, so the scheduler does not import it: it states
here what it needs (a device's standing, its spot-check rate, and issuing known-answer
tasks) and validation registers its answer at start-up (ValidationConfig.ready).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured

from .models import Replica


class SpotCheckRound(Protocol):
    """The spot checks of one dispatch transaction: picked one by one, written together."""

    def issue(self, *, device, app_id: int, rng, network: str = "") -> Replica | None:
        """A known-answer replica for `device`, not yet saved (None: none left for it)."""

    def save(self) -> list[Replica]:
        """Write every replica issue() returned; the ones saved (with their pk)."""


class Standing(Protocol):
    """How far a device is trusted: `confirmed` results, and whether it is established."""

    confirmed: int
    established: bool


@dataclass(frozen=True)
class Trust:
    # device ids -> their standings (new devices included); one query per kind of row
    standings: Callable[[Iterable[int]], Mapping[int, Standing]]
    # (confirmed=, app_rate=) -> the share of this device's tasks that are spot checks
    device_spot_check_rate: Callable[..., float]
    # (device=, app_id=, rng=, network=) -> a known-answer replica sent to it, or None
    spot_check_issue: Callable[..., Replica | None]
    # (device=, runtimes=) -> apps with known-answer tasks this device could be sent
    spot_check_apps: Callable[..., list[int]]
    # (volunteers=, networks=) -> a SpotCheckRound for the devices of one dispatch
    # transaction (their pools read once, their replicas written in one statement)
    spot_check_round: Callable[..., SpotCheckRound] | None = None


_trust: Trust | None = None


def trust_register(trust: Trust) -> None:
    global _trust
    _trust = trust


def trust() -> Trust:
    if _trust is None:
        raise ImproperlyConfigured("Dispatch needs validation's answers: put "
                                   "sparecycles.validation in INSTALLED_APPS.")
    return _trust
