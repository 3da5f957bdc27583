"""Reads of the account pages: profiles, the dashboard's read-model and the team directory.

Credit, work and tokens are read through their own apps' selectors and models; this
module only puts them together for a page.
"""

import datetime as dt
import time
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from sparecycles.credit.badges import BadgeView, volunteer_badges
from sparecycles.credit.claims import approved_flops, claim_of, reference_gflops
from sparecycles.credit.models import MICRO, CreditGrant
from sparecycles.credit.normalisation import bounded_by_declaration, micro_credit_for_ms
from sparecycles.credit.selectors import (
    by_credit,
    row_of,
    totals_of,
    volunteer_rank,
    volunteer_totals,
)
from sparecycles.credit.stats_export import device_rac
from sparecycles.ledger.selectors import epoch_estimate, volunteer_balance_micro
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device, Team, Volunteer


# --- profiles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    volunteer: Volunteer
    name: str
    credit: float
    credit_micro: int
    rac: float
    reputation: float
    team: Team | None
    rank_credit: int | None
    rank_rac: int | None
    badges: list[BadgeView]


def volunteer_profile(*, volunteer: Volunteer) -> Profile:
    totals = volunteer_totals(volunteer_id=volunteer.pk)
    return Profile(
        volunteer=volunteer,
        name=volunteer.public_name,
        credit=totals.credit,
        credit_micro=totals.credit_micro,
        rac=totals.rac,
        reputation=volunteer.reputation,
        team=None if volunteer.show_anonymous else volunteer.team,
        rank_credit=volunteer_rank(volunteer_id=volunteer.pk, order="credit"),
        rank_rac=volunteer_rank(volunteer_id=volunteer.pk, order="rac"),
        badges=volunteer_badges(volunteer_id=volunteer.pk),
    )


# --- the dashboard ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceRow:
    device: Device
    credit: float
    rac: float
    results: int
    valid: int


def device_rows(*, volunteer: Volunteer, now: float | None = None) -> list[DeviceRow]:
    """The volunteer's devices with their credit summed from their grants (devices keep no
    running totals: see credit.services.credit_grant)."""
    now = now if now is not None else time.time()
    devices = list(volunteer.devices.filter(revoked=False).order_by("-last_seen", "-pk"))
    ids = [d.pk for d in devices]
    credit = dict(CreditGrant.objects.filter(device_id__in=ids, reversal__isnull=True)
                  .values("device_id")
                  .annotate(s=Sum("amount_micro")).values_list("device_id", "s"))
    results = {row["device_id"]: row for row in Replica.objects.filter(
        device_id__in=ids, received_at__isnull=False).values("device_id").annotate(
        n=Count("id"), valid=Count("id", filter=Q(validate_state=Replica.ValidateState.VALID)))}
    return [DeviceRow(device=d, credit=(credit.get(d.pk) or 0) / MICRO,
                      rac=device_rac(device_id=d.pk, now=now),
                      results=results.get(d.pk, {}).get("n", 0),
                      valid=results.get(d.pk, {}).get("valid", 0))
            for d in devices]


def results_by_state(*, volunteer: Volunteer) -> list[tuple[str, int]]:
    """How many of the volunteer's replicas are in each state, in the words the admin uses."""
    counts: dict[str, int] = {}
    for row in (Replica.objects.filter(volunteer=volunteer)
                .values("server_state", "outcome", "validate_state").annotate(n=Count("id"))):
        status = Replica(server_state=row["server_state"], outcome=row["outcome"],
                         validate_state=row["validate_state"]).status
        counts[status] = counts.get(status, 0) + row["n"]
    order = ["in progress", "pending validation", "inconclusive", "valid", "invalid", "error",
             "timed out", "too late", "cancelled"]
    return sorted(counts.items(), key=lambda item: (order.index(item[0])
                                                    if item[0] in order else len(order)))


def pending_credit_micro(*, volunteer: Volunteer) -> int:
    """Credit the volunteer's returned, not yet validated results may earn if found valid:
    each the time it reported (clamped to the wall time), bounded by its declared estimate
    as granting bounds it (credit.normalisation.bounded_by_declaration). An estimate, not a
    promise: validation normalises the time by the device's speed."""
    V = Replica.ValidateState
    waiting = list(Replica.objects.filter(volunteer=volunteer, outcome=Replica.Outcome.SUCCESS,
                                          validate_state__in=[V.INIT, V.INCONCLUSIVE])
                   .select_related("workunit__app_version"))
    approvals = approved_flops({r.workunit.app_version_id for r in waiting})
    gflops = reference_gflops()
    return sum(
        bounded_by_declaration(
            micro_credit_for_ms(claim_of(r).elapsed_ms or 0, reference_gflops=gflops),
            declared_flops=r.workunit.app_version.flops_per_unit,
            approved_flops=approvals.get(r.workunit.app_version_id))
        for r in waiting)


def credit_by_day(*, volunteer: Volunteer, days: int, today: dt.date) -> list[tuple[dt.date, int]]:
    """Micro-credit granted on each of the last `days` days (oldest first, zeros included)."""
    first = today - dt.timedelta(days=days - 1)
    per_day = dict(CreditGrant.objects.filter(volunteer=volunteer, granted_at__date__gte=first,
                                              reversal__isnull=True)
                   .annotate(day=TruncDate("granted_at")).values("day")
                   .annotate(s=Sum("amount_micro")).values_list("day", "s"))
    return [(first + dt.timedelta(days=i), per_day.get(first + dt.timedelta(days=i)) or 0)
            for i in range(days)]


def tasks_in_progress(*, volunteer: Volunteer):
    return (Replica.objects.filter(volunteer=volunteer,
                                   server_state=Replica.ServerState.IN_PROGRESS)
            .select_related("workunit__app_version__app", "workunit__batch", "device")
            .order_by("sent_at"))


# --- teams ---------------------------------------------------------------------------------------
TEAMS_PER_PAGE = 50


def team_directory(*, query: str = "", page: int = 1, size: int = TEAMS_PER_PAGE):
    """Teams by total credit (those without credit yet too), optionally filtered by name;
    each with its `totals` (credit.selectors.Totals) for the page."""
    qs = Team.objects.all()
    if query:
        qs = qs.filter(name__icontains=query)
    total = qs.count()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    now = time.time()
    teams = list(by_credit(qs)[start:start + size])
    for team in teams:
        team.totals = totals_of(row_of(team), now=now)
    return teams, page, pages, total


def device_earnings(*, volunteer: Volunteer) -> dict:
    """What the volunteer page's "All time" column shows for the device's volunteer: exact
    integers of micro-credit and micro-tokens (the page formats them), the rank, results
    found valid, pending credit and the token estimate for the epoch in progress."""
    estimate = epoch_estimate(volunteer_id=volunteer.pk)
    return {
        "volunteer": volunteer.public_name,
        "credit_micro": volunteer_totals(volunteer_id=volunteer.pk).credit_micro,
        "pending_credit_micro": pending_credit_micro(volunteer=volunteer),
        "results_valid": Replica.objects.filter(
            volunteer=volunteer, validate_state=Replica.ValidateState.VALID).count(),
        "rank": volunteer_rank(volunteer_id=volunteer.pk),
        "tokens_micro": volunteer_balance_micro(volunteer.pk),
        "epoch": None if estimate is None else {
            "index": estimate.index,
            "closes_at": estimate.closes_at.isoformat(),
            "estimated_tokens_micro": estimate.estimated_micro,
            "emission_micro": estimate.emission_micro,
        },
    }
