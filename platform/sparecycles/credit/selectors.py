"""Reads for credit: ranks and leaderboards, straight from indexed, maintained aggregates.

Ranks by total credit count the rows ahead on the credit index; ranks by RAC
use rac_key, which orders rows exactly as their current RAC (see averages).
No request sorts every row.
"""

import time
from dataclasses import dataclass
from typing import Literal

from django.db.models import Q, QuerySet

from sparecycles.volunteers.models import Team, Volunteer

from .averages import rac_now
from .models import MICRO, CreditAggregate

Order = Literal["credit", "rac"]
PAGE_SIZE = 50


def _ahead(qs: QuerySet, row: CreditAggregate, order: Order) -> QuerySet:
    if order == "rac":
        return qs.filter(Q(rac_key__gt=row.rac_key) | Q(rac_key=row.rac_key, pk__lt=row.pk))
    return qs.filter(Q(credit_micro__gt=row.credit_micro)
                     | Q(credit_micro=row.credit_micro, pk__lt=row.pk))


def rank_of(row: CreditAggregate, *, order: Order = "credit",
            among: QuerySet | None = None) -> int:
    qs = among if among is not None else type(row).objects.all()
    return _ahead(qs, row, order).count() + 1


def ordered(qs: QuerySet, order: Order) -> QuerySet:
    if order == "rac":
        return qs.order_by("-rac_key", "pk")
    return qs.order_by("-credit_micro", "pk")


@dataclass(frozen=True)
class BoardRow:
    rank: int
    id: int
    name: str
    credit: float
    rac: float
    team: str = ""
    members: int | None = None


@dataclass(frozen=True)
class Board:
    rows: list[BoardRow]
    page: int
    pages: int
    total: int
    order: Order


def _page(qs: QuerySet, *, order: Order, page: int, size: int):
    total = qs.count()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return ordered(qs, order)[start:start + size], start, page, pages, total


def volunteer_board(*, order: Order = "credit", page: int = 1, size: int = PAGE_SIZE,
                    team: Team | None = None) -> Board:
    qs = Volunteer.objects.filter(credit_micro__gt=0)
    if team is not None:
        qs = qs.filter(team=team)
    rows, start, page, pages, total = _page(qs.select_related("team"), order=order, page=page,
                                           size=size)
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=v.pk, name=v.public_name, credit=v.credit_micro / MICRO,
                 rac=rac_now(rac=v.rac, rac_time=v.rac_time, now=now),
                 team=v.team.name if v.team and not v.show_anonymous else "")
        for i, v in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order)


def team_board(*, order: Order = "credit", page: int = 1, size: int = PAGE_SIZE) -> Board:
    qs = Team.objects.filter(credit_micro__gt=0)
    rows, start, page, pages, total = _page(qs, order=order, page=page, size=size)
    now = time.time()
    return Board(rows=[
        BoardRow(rank=start + i + 1, id=t.pk, name=t.name, credit=t.credit_micro / MICRO,
                 rac=rac_now(rac=t.rac, rac_time=t.rac_time, now=now), members=t.member_count)
        for i, t in enumerate(rows)
    ], page=page, pages=pages, total=total, order=order)


def volunteer_stats(*, volunteer: Volunteer) -> dict:
    """What PROTOCOL.md's `stats` frame carries (tokens are filled in by the caller)."""
    return {
        "credit": round(volunteer.credit_micro / MICRO, 2),
        "rac": round(volunteer.recent_average_credit, 2),
        "rank": rank_of(volunteer) if volunteer.credit_micro > 0 else None,
    }
