"""Reads for volunteers: profiles, the dashboard, teams, and who is looking."""

import datetime as dt
import time
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from sparecycles.ledger.selectors import tokens_str, volunteer_balance_micro

from .models import Badge, Device, Team, Volunteer


def volunteer_tokens(volunteer: Volunteer) -> str:
    """The volunteer's token balance as a decimal string (PROTOCOL.md), from the ledger."""
    return tokens_str(volunteer_balance_micro(volunteer))


# --- who is looking -----------------------------------------------------------------------
# An anonymous browser that proved it holds a device token (claim.js posts it once) is
# remembered in its session, so the boards can highlight its row before any sign-up.
SESSION_VOLUNTEER_KEY = "sparecycles.volunteer_id"


def volunteer_of_user(*, user) -> Volunteer | None:
    if user is None or not user.is_authenticated:
        return None
    return Volunteer.objects.filter(user=user).select_related("team").first()


def viewer_volunteer_id(*, user, session) -> int | None:
    """The volunteer a request speaks for: the account's, else this browser's device's."""
    if user is not None and user.is_authenticated:
        return Volunteer.objects.filter(user=user).values_list("pk", flat=True).first()
    value = session.get(SESSION_VOLUNTEER_KEY) if session is not None else None
    return value if isinstance(value, int) else None


def device_by_token(*, token: str) -> Device | None:
    if not token:
        return None
    return (Device.objects.select_related("volunteer")
            .filter(token_hash=Device.hash_token(token), revoked=False).first())


# --- profiles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BadgeView:
    kind: str
    label: str
    description: str
    awarded_at: dt.datetime | None  # None: not earned yet (a milestone still ahead)


BADGE_DESCRIPTIONS = {
    Badge.Kind.FIRST_VALID: "A first result confirmed by the quorum.",
    Badge.Kind.CREDIT_1K: "1,000 credit earned.",
    Badge.Kind.CREDIT_10K: "10,000 credit earned.",
    Badge.Kind.CREDIT_100K: "100,000 credit earned.",
    Badge.Kind.STREAK_7: "Credit earned on 7 days in a row.",
    Badge.Kind.STREAK_30: "Credit earned on 30 days in a row.",
}


def volunteer_badges(*, volunteer: Volunteer) -> list[BadgeView]:
    """Every badge, earned ones first (with the date), then the milestones still ahead."""
    have = {b.kind: b.awarded_at for b in volunteer.badges.all()}
    earned, ahead = [], []
    for kind in Badge.Kind:
        view = BadgeView(kind=kind.value, label=kind.label,
                         description=BADGE_DESCRIPTIONS[kind], awarded_at=have.get(kind.value))
        (earned if view.awarded_at else ahead).append(view)
    return earned + ahead


@dataclass(frozen=True)
class Profile:
    volunteer: Volunteer
    name: str
    credit: float
    rac: float
    reputation: float
    team: Team | None
    rank_credit: int | None
    rank_rac: int | None
    badges: list[BadgeView]


def volunteer_profile(*, volunteer: Volunteer) -> Profile:
    from sparecycles.credit.selectors import rank_of

    on_board = volunteer.credit_micro > 0
    among = Volunteer.objects.all()  # whoever is ahead of a row on the board is on it too
    return Profile(
        volunteer=volunteer,
        name=volunteer.public_name,
        credit=volunteer.total_credit,
        rac=volunteer.recent_average_credit,
        reputation=volunteer.reputation,
        team=None if volunteer.show_anonymous else volunteer.team,
        rank_credit=rank_of(volunteer, order="credit", among=among) if on_board else None,
        rank_rac=rank_of(volunteer, order="rac", among=among) if on_board else None,
        badges=volunteer_badges(volunteer=volunteer),
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
    from sparecycles.credit.models import MICRO, CreditGrant
    from sparecycles.credit.stats_export import device_rac
    from sparecycles.scheduler.models import Replica

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
    from sparecycles.scheduler.models import Replica

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
    from sparecycles.credit.claims import approved_flops, claim_of, reference_gflops
    from sparecycles.credit.normalisation import bounded_by_declaration, micro_credit_for_ms
    from sparecycles.scheduler.models import Replica

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
    from sparecycles.credit.models import CreditGrant

    first = today - dt.timedelta(days=days - 1)
    per_day = dict(CreditGrant.objects.filter(volunteer=volunteer, granted_at__date__gte=first,
                                              reversal__isnull=True)
                   .annotate(day=TruncDate("granted_at")).values("day")
                   .annotate(s=Sum("amount_micro")).values_list("day", "s"))
    return [(first + dt.timedelta(days=i), per_day.get(first + dt.timedelta(days=i)) or 0)
            for i in range(days)]


def tasks_in_progress(*, volunteer: Volunteer):
    from sparecycles.scheduler.models import Replica

    return (Replica.objects.filter(volunteer=volunteer,
                                   server_state=Replica.ServerState.IN_PROGRESS)
            .select_related("workunit__app_version__app", "workunit__batch", "device")
            .order_by("sent_at"))


# --- teams ---------------------------------------------------------------------------------------
TEAMS_PER_PAGE = 50


def team_directory(*, query: str = "", page: int = 1, size: int = TEAMS_PER_PAGE):
    """Teams by total credit (those without credit yet too), optionally filtered by name."""
    qs = Team.objects.order_by("-credit_micro", "pk")
    if query:
        qs = qs.filter(name__icontains=query)
    total = qs.count()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return list(qs[start:start + size]), page, pages, total


def team_by_slug(*, slug: str) -> Team | None:
    return Team.objects.select_related("founder").filter(slug=slug).first()
