"""Reads for credit: ranks and leaderboards, straight from indexed, maintained aggregates.

Ranks by total credit count the rows ahead on the credit index; ranks by RAC
use rac_key, which orders rows exactly as their current RAC (see averages).
No request sorts every row.
"""

import time
from dataclasses import dataclass
from typing import Literal

from django.db.models import Q, QuerySet

from sparecycles.projects.models import Project
from sparecycles.volunteers.models import Team, Volunteer

from .averages import KEY_FLOOR, rac_now
from .models import MICRO, CreditAggregate, FlopsApproval, VolunteerProjectCredit

Order = Literal["credit", "rac"]
PAGE_SIZE = 50


def rank_of(row: CreditAggregate, *, order: Order = "credit",
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
    qs = Volunteer.objects.all()
    if team is not None:
        qs = qs.filter(team=team)
    rows, start, page, pages, total = _page(qs, order=order, page=page, size=size,
                                           related=("team",))
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=v.pk, name=v.public_name, credit=v.credit_micro / MICRO,
                 rac=rac_now(rac=v.rac, rac_time=v.rac_time, now=now),
                 team=v.team.name if v.team and not v.show_anonymous else "")
        for i, v in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order, size=size)


def team_board(*, order: Order = "credit", page: int = 1, size: int = PAGE_SIZE) -> Board:
    qs = Team.objects.all()
    rows, start, page, pages, total = _page(qs, order=order, page=page, size=size)
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=t.pk, name=t.name, credit=t.credit_micro / MICRO,
                 rac=rac_now(rac=t.rac, rac_time=t.rac_time, now=now), members=t.member_count,
                 slug=t.slug)
        for i, t in enumerate(rows)
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
                 team=(r.volunteer.team.name if r.volunteer.team and not r.volunteer.show_anonymous
                       else ""))
        for i, r in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order, size=size)


def volunteer_stats(*, volunteer: Volunteer) -> dict:
    """What PROTOCOL.md's `stats` frame carries (tokens are filled in by the caller).

    `credit` is a number as the protocol says, but not rounded (a small app's result earns
    a few micro-credits, which 2 decimals showed as 0.0); `credit_micro` is the exact
    integer the books hold, for clients that format it themselves.
    """
    return {
        "credit": volunteer.credit_micro / MICRO,
        "credit_micro": volunteer.credit_micro,
        "rac": round(volunteer.recent_average_credit, 6),
        "rank": rank_of(volunteer) if volunteer.credit_micro > 0 else None,
    }


def flops_approval_in_force(*, app_version) -> FlopsApproval | None:
    """The superuser approval of the version's FLOPs estimate in force, or None."""
    latest = (FlopsApproval.objects.filter(app_version=app_version).select_related("approved_by")
              .order_by("-id").first())
    return None if latest is None or latest.revoked else latest
