"""Badges and milestones, awarded when credit is granted (inside its transaction)."""

import datetime as dt
from dataclasses import dataclass

from django.db.models.functions import TruncDay

from .models import MICRO, Badge, CreditGrant, VolunteerCredit
from .templatetags.credit_format import format_credit_micro

CREDIT_MILESTONES = [
    (1_000, Badge.Kind.CREDIT_1K),
    (10_000, Badge.Kind.CREDIT_10K),
    (100_000, Badge.Kind.CREDIT_100K),
]
STREAKS = [(7, Badge.Kind.STREAK_7), (30, Badge.Kind.STREAK_30)]


def streak_days(*, volunteer_id: int, today: dt.date) -> int:
    """Consecutive days, ending today, on which the volunteer earned credit."""
    since = today - dt.timedelta(days=max(n for n, _ in STREAKS))
    days = {
        d.date() for d in CreditGrant.objects.filter(
            volunteer_id=volunteer_id, granted_at__date__gte=since,
        ).datetimes("granted_at", "day")
    }
    streak = 0
    while today - dt.timedelta(days=streak) in days:
        streak += 1
    return streak


def badges_award(*, volunteer_id: int, credit_micro: int, credit_before: int,
                 last_credit_time: float | None, now: dt.datetime) -> list[str]:
    """Award the badges `volunteer`'s newest grant earned; returns their kinds.

    Milestones are crossings between the credit before and after, and a streak can only
    grow with the first grant of a day, so most grants cost no query here at all."""
    return badges_award_many([Earning(volunteer_id, credit_micro, credit_before,
                                      last_credit_time)], now=now).get(volunteer_id, [])


@dataclass(frozen=True)
class Earning:
    """A volunteer's credit before and after one grant transaction."""

    volunteer_id: int
    credit_micro: int
    credit_before: int
    last_credit_time: float | None


def badges_award_many(earnings: list[Earning], *, now: dt.datetime) -> dict[int, list[str]]:
    """badges_award for every volunteer of one grant transaction (credit_grant) in at most
    three queries together, not three per volunteer: the streaks of those whose first
    grant of the day this is, the badges they already have, the new ones. Returns the new
    badges' kinds per volunteer (only those who earned one)."""
    today = now.date()
    earned: dict[int, list] = {}
    streaks = []
    for e in earnings:
        kinds = []
        if e.credit_before == 0:
            kinds.append(Badge.Kind.FIRST_VALID)
        kinds += [kind for credit, kind in CREDIT_MILESTONES
                  if e.credit_before < credit * MICRO <= e.credit_micro]
        earned[e.volunteer_id] = kinds
        if e.last_credit_time is None or dt.datetime.fromtimestamp(
                e.last_credit_time, tz=dt.UTC).date() != today:
            streaks.append(e.volunteer_id)
    for volunteer_id, streak in streaks_days(volunteer_ids=streaks, today=today).items():
        earned[volunteer_id] += [kind for days, kind in STREAKS if streak >= days]
    earned = {pk: kinds for pk, kinds in earned.items() if kinds}
    if not earned:
        return {}
    have = set(Badge.objects.filter(volunteer_id__in=list(earned),
                                    kind__in={k for kinds in earned.values() for k in kinds})
               .values_list("volunteer_id", "kind"))
    new = {pk: [kind for kind in kinds if (pk, kind) not in have]
           for pk, kinds in earned.items()}
    Badge.objects.bulk_create([Badge(volunteer_id=pk, kind=kind, awarded_at=now)
                               for pk, kinds in new.items() for kind in kinds],
                              ignore_conflicts=True)
    return {pk: [str(kind) for kind in kinds] for pk, kinds in new.items() if kinds}


def streaks_days(*, volunteer_ids: list[int], today: dt.date) -> dict[int, int]:
    """streak_days of many volunteers in one query."""
    if not volunteer_ids:
        return {}
    since = today - dt.timedelta(days=max(n for n, _ in STREAKS))
    days: dict[int, set[dt.date]] = {pk: set() for pk in volunteer_ids}
    for volunteer_id, day in (
            CreditGrant.objects.filter(volunteer_id__in=volunteer_ids,
                                       granted_at__date__gte=since)
            .annotate(day=TruncDay("granted_at")).values_list("volunteer_id", "day")
            .distinct().order_by()):
        days[volunteer_id].add(day.date())
    streaks = {}
    for pk, mine in days.items():
        streak = 0
        while today - dt.timedelta(days=streak) in mine:
            streak += 1
        streaks[pk] = streak
    return streaks


# --- what a profile shows -----------------------------------------------------------
@dataclass(frozen=True)
class BadgeView:
    kind: str
    label: str
    description: str
    awarded_at: dt.datetime | None  # None: not earned yet (a milestone still ahead)
    # For a badge still ahead: how far along, in words ("0.050000 of 1,000 so far.") and
    # as a value of `goal` for a <progress> bar; "" and 0 when earned.
    progress: str = ""
    value: float = 0
    goal: float = 0


BADGE_DESCRIPTIONS = {
    Badge.Kind.FIRST_VALID: "A first result confirmed by the quorum.",
    Badge.Kind.CREDIT_1K: "1,000 credit earned.",
    Badge.Kind.CREDIT_10K: "10,000 credit earned.",
    Badge.Kind.CREDIT_100K: "100,000 credit earned.",
    Badge.Kind.STREAK_7: "Credit earned on 7 days in a row.",
    Badge.Kind.STREAK_30: "Credit earned on 30 days in a row.",
}


def _ahead(kind: str, *, credit_micro: int, streak: int) -> tuple[str, float, float]:
    """What a badge not yet earned still needs: words, a value and its goal."""
    for credit, milestone in CREDIT_MILESTONES:
        if kind == milestone:
            have = min(credit_micro, credit * MICRO)
            return (f"{format_credit_micro(have)} of {credit:,} so far.", have / MICRO,
                    credit)
    for days, milestone in STREAKS:
        if kind == milestone:
            return (f"{min(streak, days)} of {days} days in a row so far.",
                    min(streak, days), days)
    return "Comes with your first result the quorum confirms.", 0, 0


def volunteer_badges(*, volunteer_id: int, today: dt.date | None = None) -> list[BadgeView]:
    """Every badge, earned ones first (with the date), then the milestones still ahead
    with how far along the volunteer is."""
    have = dict(Badge.objects.filter(volunteer_id=volunteer_id)
                .values_list("kind", "awarded_at"))
    credit_micro = (VolunteerCredit.objects.filter(pk=volunteer_id)
                    .values_list("credit_micro", flat=True).first() or 0)
    streak = None
    earned, ahead = [], []
    for kind in Badge.Kind:
        awarded_at = have.get(kind.value)
        progress, value, goal = "", 0.0, 0.0
        if awarded_at is None:
            if streak is None and kind in dict((k, d) for d, k in STREAKS):
                streak = streak_days(volunteer_id=volunteer_id,
                                     today=today or dt.datetime.now(dt.UTC).date())
            progress, value, goal = _ahead(kind, credit_micro=max(credit_micro, 0),
                                           streak=streak or 0)
        view = BadgeView(kind=kind.value, label=kind.label, description=BADGE_DESCRIPTIONS[kind],
                         awarded_at=awarded_at, progress=progress, value=value, goal=goal)
        (earned if view.awarded_at else ahead).append(view)
    return earned + ahead
