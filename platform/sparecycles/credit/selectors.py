"""Reads for credit: ranks and leaderboards, straight from indexed, maintained aggregates.

Ranks by total credit count the rows ahead on the credit index; ranks by RAC
use rac_key, which orders rows exactly as their current RAC (see averages).
No request sorts every row.
"""

import datetime as dt
import time
from dataclasses import dataclass
from typing import Literal

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from sparecycles.projects.models import Project
from sparecycles.volunteers.models import Device, Team, Volunteer

from .averages import KEY_FLOOR, rac_now
from .models import (
    MICRO,
    CreditGrant,
    CreditTotals,
    FlopsApproval,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)
from .templatetags.credit_format import format_credit

Order = Literal["credit", "rac"]
PAGE_SIZE = 50


def rank_of(row: CreditTotals, *, order: Order = "credit",
            among: QuerySet | None = None) -> int:
    """1 + the rows ahead of `row`: those above it, then those level with it but older.

    Counted as two plain index ranges (not one OR, which PostgreSQL would answer with a
    scan of the table), each an index-only count.
    """
    qs = among if among is not None else type(row).objects.all()
    if order == "rac":
        above, level = Q(rac_key__gt=row.rac_key), Q(rac_key=row.rac_key, pk__lt=row.pk)
    else:
        above = Q(credit_micro__gt=row.credit_micro)
        level = Q(credit_micro=row.credit_micro, pk__lt=row.pk)
    return qs.filter(above).count() + qs.filter(level).count() + 1


def on_board(qs: QuerySet, order: Order) -> QuerySet:
    """The rows a board lists: those with credit. Each order filters on its own indexed
    column (credit > 0, or RAC > 0, which holds for exactly the same rows: every grant
    raises both), so the database walks one index for the filter and the order alike."""
    if order == "rac":
        return qs.filter(rac_key__gt=KEY_FLOOR)
    return qs.filter(credit_micro__gt=0)


def ordered(qs: QuerySet, order: Order) -> QuerySet:
    if order == "rac":
        return qs.order_by("-rac_key", "pk")
    return qs.order_by("-credit_micro", "pk")


@dataclass(frozen=True)
class BoardRow:
    rank: int
    id: int  # the volunteer's id on volunteer and project boards, the team's on team boards
    name: str
    credit: float
    rac: float
    team: str = ""
    members: int | None = None
    slug: str = ""  # teams: their page is /teams/<slug>/


@dataclass(frozen=True)
class Board:
    rows: list[BoardRow]
    page: int
    pages: int
    total: int
    order: Order
    size: int = PAGE_SIZE


def _page(qs: QuerySet, *, order: Order, page: int, size: int, related: tuple[str, ...] = ()):
    """One page of `qs` in board order, and where it starts.

    The page's ids come from the ranking index alone (an index-only scan: skipping rows
    never touches the table), then just those rows are fetched. Pages past the middle
    are read from the other end of the index, so even the last page of 100,000 rows
    skips at most half of them.
    """
    qs = on_board(qs, order)
    total = qs.count()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    end = min(start + size, total)
    ids = ordered(qs, order).values_list("pk", flat=True)
    if start > total - end:
        ids = list(ids.reverse()[total - end:total - start])[::-1]
    else:
        ids = list(ids[start:end])
    # By primary key alone: with the board's filter too, the database may walk that
    # filter's index instead of looking the ids up.
    found = qs.model._default_manager.select_related(*related).in_bulk(ids)
    rows = [found[pk] for pk in ids if pk in found]
    return rows, start, page, pages, total


def volunteer_board(*, order: Order = "credit", page: int = 1, size: int = PAGE_SIZE,
                    team: Team | None = None) -> Board:
    qs = VolunteerCredit.objects.all()
    if team is not None:
        qs = qs.filter(volunteer__team=team)
    rows, start, page, pages, total = _page(qs, order=order, page=page, size=size,
                                           related=("volunteer__team",))
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=r.volunteer_id, name=r.volunteer.public_name,
                 credit=r.credit_micro / MICRO,
                 rac=rac_now(rac=r.rac, rac_time=r.rac_time, now=now),
                 team=_team_name(r.volunteer))
        for i, r in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order, size=size)


def _team_name(volunteer: Volunteer) -> str:
    return volunteer.team.name if volunteer.team and not volunteer.show_anonymous else ""


def team_board(*, order: Order = "credit", page: int = 1, size: int = PAGE_SIZE) -> Board:
    rows, start, page, pages, total = _page(TeamCredit.objects.all(), order=order, page=page,
                                           size=size, related=("team",))
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=r.team_id, name=r.team.name,
                 credit=r.credit_micro / MICRO,
                 rac=rac_now(rac=r.rac, rac_time=r.rac_time, now=now),
                 members=r.team.member_count, slug=r.team.slug)
        for i, r in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order, size=size)


def project_board(*, project: Project, order: Order = "credit", page: int = 1,
                  size: int = PAGE_SIZE) -> Board:
    """Volunteers by their credit within one project (VolunteerProjectCredit rows)."""
    qs = VolunteerProjectCredit.objects.filter(project=project)
    rows, start, page, pages, total = _page(qs, order=order, page=page, size=size,
                                           related=("volunteer__team",))
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=r.volunteer_id, name=r.volunteer.public_name,
                 credit=r.credit_micro / MICRO,
                 rac=rac_now(rac=r.rac, rac_time=r.rac_time, now=now),
                 team=_team_name(r.volunteer))
        for i, r in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order, size=size)


def volunteer_stats(*, volunteer_id: int) -> dict:
    """What PROTOCOL.md's `stats` frame carries (tokens are filled in by the caller).

    `credit` is a number as the protocol says, but not rounded (a small app's result earns
    a few micro-credits, which 2 decimals showed as 0.0); `credit_micro` is the exact
    integer the books hold, for clients that format it themselves.
    """
    row = VolunteerCredit.objects.filter(pk=volunteer_id).first()
    totals = totals_of(row)
    return {
        "credit": totals.credit,
        "credit_micro": totals.credit_micro,
        "rac": round(totals.rac, 6),
        "rank": rank_of(row) if row is not None and row.credit_micro > 0 else None,
    }


def volunteers_stats(volunteer_ids: list[int]) -> dict[int, dict]:
    """`volunteer_stats` for many volunteers in one query: each rank is two correlated
    index-only counts (as `rank_of`), so a socket process refreshes every device's `stats`
    in one round trip instead of three per device."""
    ahead = VolunteerCredit.objects.filter(credit_micro__gt=OuterRef("credit_micro"))
    level = VolunteerCredit.objects.filter(credit_micro=OuterRef("credit_micro"),
                                           pk__lt=OuterRef("pk"))
    rows = (VolunteerCredit.objects.filter(pk__in=volunteer_ids)
            .annotate(ahead=_count(ahead), level=_count(level)))
    now = time.time()
    found = {}
    for row in rows:
        totals = totals_of(row, now=now)
        found[row.pk] = {"credit": totals.credit, "credit_micro": totals.credit_micro,
                         "rac": round(totals.rac, 6),
                         "rank": row.ahead + row.level + 1 if row.credit_micro > 0 else None}
    empty = {"credit": 0.0, "credit_micro": 0, "rac": 0.0, "rank": None}
    return {pk: found.get(pk, empty) for pk in volunteer_ids}


def _count(qs: QuerySet) -> Subquery:
    return Subquery(qs.order_by().values(n=Func(F("pk"), function="COUNT")),
                    output_field=IntegerField())


# --- totals of one owner ----------------------------------------------------------------
@dataclass(frozen=True)
class Totals:
    """An owner's credit as pages show it: the total, and the recent average as of now."""

    credit_micro: int = 0
    rac: float = 0.0

    @property
    def credit(self) -> float:
        return self.credit_micro / MICRO


def totals_of(row: CreditTotals | None, *, now: float | None = None) -> Totals:
    """A credit row's totals (zero for an owner without a row: no credit yet)."""
    if row is None:
        return Totals()
    now = time.time() if now is None else now
    return Totals(credit_micro=row.credit_micro,
                  rac=rac_now(rac=row.rac, rac_time=row.rac_time, now=now))


def volunteer_totals(*, volunteer_id: int) -> Totals:
    return totals_of(VolunteerCredit.objects.filter(pk=volunteer_id).first())


def team_totals(*, team_id: int) -> Totals:
    return totals_of(TeamCredit.objects.filter(pk=team_id).first())


def project_totals(*, project_id: int) -> Totals:
    return totals_of(ProjectCredit.objects.filter(pk=project_id).first())


def volunteer_credit_micro(*, volunteer_id: int) -> int:
    return volunteer_totals(volunteer_id=volunteer_id).credit_micro


def volunteer_rank(*, volunteer_id: int, order: Order = "credit") -> int | None:
    """The volunteer's rank on the volunteer board; None while they have no credit."""
    row = VolunteerCredit.objects.filter(pk=volunteer_id).first()
    if row is None or row.credit_micro <= 0:
        return None
    return rank_of(row, order=order)


def team_rank(*, team_id: int, order: Order = "credit") -> int | None:
    row = TeamCredit.objects.filter(pk=team_id).first()
    if row is None or row.credit_micro <= 0:
        return None
    return rank_of(row, order=order)


def by_credit(qs: QuerySet) -> QuerySet:
    """Teams or projects (`qs`) by total credit, those without credit yet last, each with
    its credit row loaded (read it with totals_of(row_of(obj)))."""
    return qs.select_related("credit").order_by(
        F("credit__credit_micro").desc(nulls_last=True), "pk")


def row_of(owner) -> CreditTotals | None:
    """The credit row loaded with `owner` (by_credit), or None if it has none yet."""
    try:
        return owner.credit
    except ObjectDoesNotExist:
        return None


def project_top_contributors(*, project: Project, limit: int = 10) -> list[dict]:
    """Volunteers with the most credit granted for this project's work (a project page).

    A grant an epoch already paid stays with the anonymous volunteer it was granted to
    when that volunteer is merged into an account (volunteer_credit_merge): it counts
    for the account here, so the merged profile is never listed on its own."""
    rows = list(CreditGrant.objects.filter(project=project, reversal__isnull=True)
                .values(holder=Coalesce("volunteer__merged_into_id", "volunteer_id"))
                .annotate(credit=Sum("amount_micro"), results=Count("id"))
                .order_by("-credit", "holder")[:limit])
    for row in rows:
        row["volunteer"] = row.pop("holder")
    names = {v.pk: v.public_name for v in
             Volunteer.objects.filter(pk__in=[r["volunteer"] for r in rows])}
    return [{"name": names.get(r["volunteer"], "Anonymous"), "credit": r["credit"] / MICRO,
             "credit_text": format_credit(r["credit"] / MICRO), "results": r["results"]}
            for r in rows]


def flops_approval_in_force(*, app_version) -> FlopsApproval | None:
    """The superuser approval of the version's FLOPs estimate in force, or None."""
    latest = (FlopsApproval.objects.filter(app_version=app_version).select_related("approved_by")
              .order_by("-id").first())
    return None if latest is None or latest.revoked else latest


def credit_status(*, recent_since: float, registered_since: float) -> dict[str, int]:
    """The people side of the public server status (BOINC's server_status.php names).

    "Recent credit" is credit granted since `recent_since` (the status page passes one RAC
    half-life ago), counted on the grants' granted_at index for volunteers and hosts alike.
    Six queries whatever the size of the site.
    """
    since = dt.datetime.fromtimestamp(recent_since, tz=dt.UTC)
    registered = dt.datetime.fromtimestamp(registered_since, tz=dt.UTC)
    recent = (CreditGrant.objects.filter(granted_at__gte=since, reversal__isnull=True)
              .aggregate(users=Count("volunteer", distinct=True),
                         hosts=Count("device", distinct=True)))
    with_credit = (CreditGrant.objects.filter(reversal__isnull=True, device__isnull=False)
                   .aggregate(hosts=Count("device", distinct=True)))
    return {
        "users_with_recent_credit": recent["users"] or 0,
        "users_with_credit": VolunteerCredit.objects.filter(credit_micro__gt=0).count(),
        "users_registered_in_past_24_hours": Volunteer.objects.filter(
            created_at__gte=registered, merged_into__isnull=True).count(),
        "hosts_with_recent_credit": recent["hosts"] or 0,
        "hosts_with_credit": with_credit["hosts"] or 0,
        "hosts_registered_in_past_24_hours": Device.objects.filter(
            created_at__gte=registered).count(),
    }
