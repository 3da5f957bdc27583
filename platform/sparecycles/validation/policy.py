"""Pure decisions (no database): credibility, result groups, the canonical choice.

Sarmenta's credibility-based fault tolerance ("Sabotage-tolerance mechanisms for
volunteer computing systems", FGCS 18(4), 2002), adapted:

- a device that survived k checks (spot checks passed, or results an established
  device agreed with) has credibility 1 − f / (1 + e·k), where f is the assumed
  share of saboteurs: 1 − f when new, and Sarmenta's 1 − f/(k·e) for the
  blacklisting case as k grows (a device caught is blacklisted: quarantined);
- a result group's credibility is the probability that it is the correct one,
  given that bad results may all agree (colluders):
      P(Ga good) · Π_{b≠a} P(Gb bad) / (Σ_j P(Gj good) · Π_{i≠j} P(Gi bad) + Π_i P(Gi bad))
  with P(G good) = Π Cr(d) and P(G bad) = Π (1 − Cr(d)) over its members;
- a work unit is done when its best group's credibility reaches the app's threshold
  θ = 1 − acceptable error rate.

On top of Sarmenta, two hard rules: a group settles a replicated work unit only if it
holds at least min_quorum results and at least one *established* device (so new
devices never validate each other, whatever their number), and a suspect device's
credibility is halved.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Comparator = Callable[[Any, Any], bool]


@dataclass(frozen=True)
class Voter:
    """What validation knows about the device behind one result."""

    credibility: float
    established: bool = False
    suspect: bool = False


@dataclass(frozen=True)
class Choice:
    group: list[int]  # indexes of the results that agree with the canonical one
    credibility: float


@dataclass(frozen=True)
class Verdict:
    """The decision for one work unit's returned results."""

    choice: Choice | None
    best_credibility: float
    reason: str
    best_size: int = 0  # results in the best group


def device_credibility(*, confirmed: int, assumed_share: float, suspect: bool = False) -> float:
    """Sarmenta's worker credibility with blacklisting, finite for a device never checked."""
    credibility = 1.0 - assumed_share / (1.0 + math.e * max(0, confirmed))
    return credibility / 2 if suspect else credibility


def result_groups(outputs: Sequence[Any], equal: Comparator) -> list[list[int]]:
    """Partition results into groups that agree with the group's first member.

    `equal` may raise (a broken custom validator): the caller treats that as a validator
    error for the work unit.
    """
    groups: list[list[int]] = []
    for index, output in enumerate(outputs):
        for group in groups:
            if equal(outputs[group[0]], output):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


def group_credibilities(groups: Sequence[Sequence[float]]) -> list[float]:
    """For each group of member credibilities, the probability that it is the correct one."""
    good = [math.prod(group) for group in groups]
    bad = [math.prod(1.0 - c for c in group) for group in groups]
    all_bad = math.prod(bad)
    weights = []
    for index in range(len(groups)):
        others_bad = math.prod(b for j, b in enumerate(bad) if j != index)
        weights.append(good[index] * others_bad)
    total = sum(weights) + all_bad
    return [w / total if total > 0 else 0.0 for w in weights]


def canonical_choose(outputs: Sequence[Any], voters: Sequence[Voter], equal: Comparator, *,
                     min_quorum: int, threshold: float) -> Verdict:
    """Pick the canonical group, or say why there is none yet.

    At min_quorum 1 the owner asked for no replication: the plain majority rule of BOINC
    applies (one result is enough). From 2 up, credibility and an established device decide.
    """
    groups = result_groups(outputs, equal)
    if not groups:
        return Verdict(None, 0.0, "no results", 0)
    credibilities = group_credibilities([[voters[i].credibility for i in g] for g in groups])
    best = max(range(len(groups)), key=lambda i: (credibilities[i], len(groups[i])))
    group, credibility = groups[best], credibilities[best]
    size = len(group)
    if min_quorum <= 1:
        # BOINC's majority rule; the biggest group, not the most credible, is the majority.
        group = max(groups, key=len)
        if 2 * len(group) > len(outputs):
            return Verdict(Choice(group, credibility), credibility, "", len(group))
        return Verdict(None, credibility, "no majority", len(group))
    if size < min_quorum:
        return Verdict(None, credibility,
                       f"best group has {size} of min_quorum {min_quorum} results", size)
    if not any(voters[i].established for i in group):
        return Verdict(None, credibility, "no established device in the agreeing group", size)
    if credibility < threshold:
        return Verdict(None, credibility,
                       f"credibility {credibility:.4f} below the threshold {threshold}", size)
    return Verdict(Choice(group, credibility), credibility, "", size)


def spot_check_rate(*, confirmed: int, new_rate: float, floor: float, app_rate: float = 0.0
                    ) -> float:
    """Share of a device's tasks that are known-answer checks: high when new, falling as
    1/(1 + confirmed) to `floor` (Sarmenta: credibility grows with checks survived)."""
    return min(1.0, max(app_rate, floor, new_rate / (1 + max(0, confirmed))))
