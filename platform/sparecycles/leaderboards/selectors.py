"""Reads for the leaderboard pages: one page of a board, plus where the viewer stands.

The rows come from credit.selectors (indexed, maintained aggregates); this module adds
the viewer's own standing — their rank even when their row is on another page — and
the JSON shape the live page refetches.
"""

import time
from dataclasses import asdict, dataclass
from typing import Literal

from django.db.models import QuerySet
from django.urls import reverse

from sparecycles.credit.averages import rac_now
from sparecycles.credit.models import (
    MICRO,
    CreditTotals,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)
from sparecycles.credit.selectors import (
    PAGE_SIZE,
    Board,
    Order,
    by_credit,
    project_board,
    rank_of,
    row_of,
    team_board,
    totals_of,
    volunteer_board,
)
from sparecycles.credit.templatetags.credit_format import format_credit, format_rac
from sparecycles.projects.models import Project
from sparecycles.volunteers.models import Team

Kind = Literal["volunteers", "teams", "project"]
ORDERS: tuple[Order, ...] = ("credit", "rac")


@dataclass(frozen=True)
class Standing:
    """The viewer's row (their volunteer, or their team on the team board)."""

    id: int
    name: str
    rank: int
    page: int
    credit: float
    rac: float


@dataclass(frozen=True)
class BoardPage:
    kind: Kind
    board: Board
    you: Standing | None
    project: Project | None = None

    @property
    def highlight_id(self) -> int | None:
        return self.you.id if self.you else None


def parse_order(value: str | None) -> Order:
    return value if value in ORDERS else "credit"  # type: ignore[return-value]


def parse_page(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def _standing(row: CreditTotals, *, id: int, name: str, order: Order, among: QuerySet,
              size: int) -> Standing | None:
    if row.credit_micro <= 0:
        return None  # not on the board yet
    # Everyone ahead of a row on the board is on it too, so `among` needs no board filter
    # (which would only steer the database away from the index that orders the rows).
    rank = rank_of(row, order=order, among=among)
    return Standing(id=id, name=name, rank=rank, page=(rank - 1) // size + 1,
                    credit=row.credit_micro / MICRO,
                    rac=rac_now(rac=row.rac, rac_time=row.rac_time, now=time.time()))


def volunteers_page(*, order: Order, page: int, viewer_id: int | None,
                    size: int = PAGE_SIZE) -> BoardPage:
    you = None
    row = (VolunteerCredit.objects.select_related("volunteer").filter(pk=viewer_id).first()
           if viewer_id else None)
    if row is not None:
        you = _standing(row, id=row.volunteer_id, name=row.volunteer.public_name, order=order,
                        among=VolunteerCredit.objects.all(), size=size)
    board = volunteer_board(order=order, page=page, size=size)
    return BoardPage(kind="volunteers", board=board, you=you)


def teams_page(*, order: Order, page: int, viewer_id: int | None,
               size: int = PAGE_SIZE) -> BoardPage:
    you = None
    team = Team.objects.filter(members__pk=viewer_id).first() if viewer_id else None
    row = TeamCredit.objects.filter(pk=team.pk).first() if team is not None else None
    if row is not None:
        you = _standing(row, id=team.pk, name=team.name, order=order,
                        among=TeamCredit.objects.all(), size=size)
    return BoardPage(kind="teams", board=team_board(order=order, page=page, size=size), you=you)


def project_page(*, project: Project, order: Order, page: int, viewer_id: int | None,
                 size: int = PAGE_SIZE) -> BoardPage:
    you = None
    row = (VolunteerProjectCredit.objects.select_related("volunteer")
           .filter(project=project, volunteer_id=viewer_id).first() if viewer_id else None)
    if row is not None:
        you = _standing(row, id=row.volunteer_id, name=row.volunteer.public_name, order=order,
                        among=VolunteerProjectCredit.objects.filter(project=project),
                        size=size)
    board = project_board(project=project, order=order, page=page, size=size)
    return BoardPage(kind="project", board=board, you=you, project=project)


def teams_without_credit(*, limit: int = 20) -> list[Team]:
    """The newest teams that have not earned credit yet (not on the board, which ranks
    credit): listed under it, so a team just founded can be found and joined."""
    return list(Team.objects.exclude(credit__credit_micro__gt=0)
                .order_by("-created_at", "-pk")[:limit])


@dataclass(frozen=True)
class ProjectRow:
    project: Project
    credit: float
    rac: float


def public_projects() -> list[ProjectRow]:
    """Public projects by total credit (credit's ProjectCredit rows), those without last."""
    now = time.time()
    return [ProjectRow(project=p, credit=t.credit, rac=t.rac)
            for p in by_credit(Project.objects.filter(is_public=True))
            for t in [totals_of(row_of(p), now=now)]]


def row_url(kind: Kind, row) -> str:
    if kind == "teams":
        return reverse("accounts:team", args=[row.slug])
    return reverse("accounts:profile", args=[row.id])


def _amounts(credit: float, rac: float) -> dict:
    """Numbers for programs (credit exact to the micro-credit, RAC to 4 significant
    digits) and the same as text for the page, formatted once, here."""
    return {"credit": round(credit, 6), "credit_text": format_credit(credit),
            "rac": float(f"{rac:.4g}"), "rac_text": format_rac(rac)}


def board_json(page: BoardPage) -> dict:
    """What /leaderboards/…?format=json answers, and what static/leaderboards/live.js draws."""
    board = page.board
    return {
        "board": page.kind,
        "project": page.project.slug if page.project else None,
        "order": board.order,
        "page": board.page,
        "pages": board.pages,
        "page_size": board.size,
        "total": board.total,
        "rows": [
            {"rank": row.rank, "id": row.id, "name": row.name, **_amounts(row.credit, row.rac),
             "team": row.team, "members": row.members, "url": row_url(page.kind, row),
             "you": row.id == page.highlight_id}
            for row in board.rows
        ],
        "you": {**asdict(page.you), **_amounts(page.you.credit, page.you.rac)} if page.you
        else None,
        "generated_at": round(time.time(), 3),
    }
