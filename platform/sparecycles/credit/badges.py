"""Badges and milestones, awarded when credit is granted (inside its transaction)."""

import datetime as dt
from dataclasses import dataclass

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

    Called by credit_grant with the volunteer's new total (`credit_micro`). Milestones are
    crossings between the credit before and after, and a streak can only grow
    with the first grant of a day, so most grants cost no query here at all.
    """
    earned = []
    if credit_before == 0:
        earned.append(Badge.Kind.FIRST_VALID)
    earned += [kind for credit, kind in CREDIT_MILESTONES
               if credit_before < credit * MICRO <= credit_micro]
    today = now.date()
    if last_credit_time is None or dt.datetime.fromtimestamp(last_credit_time,
                                                              tz=dt.UTC).date() != today:
        streak = streak_days(volunteer_id=volunteer_id, today=today)
        earned += [kind for days, kind in STREAKS if streak >= days]
    if not earned:
        return []
    have = set(Badge.objects.filter(volunteer_id=volunteer_id, kind__in=earned)
               .values_list("kind", flat=True))
    new = [kind for kind in earned if kind not in have]
    Badge.objects.bulk_create([Badge(volunteer_id=volunteer_id, kind=kind, awarded_at=now)
                               for kind in new], ignore_conflicts=True)
    return [str(kind) for kind in new]


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
