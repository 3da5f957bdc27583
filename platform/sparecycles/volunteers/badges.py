"""Badges and milestones, awarded when credit is granted (inside its transaction)."""

import datetime as dt

from sparecycles.credit.models import MICRO, CreditGrant

from .models import Badge, Volunteer

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


def badges_award(*, volunteer_id: int, now: dt.datetime) -> list[str]:
    """Award every badge the volunteer has newly earned; returns their kinds."""
    volunteer = Volunteer.objects.get(pk=volunteer_id)
    have = set(volunteer.badges.values_list("kind", flat=True))
    earned = [Badge.Kind.FIRST_VALID]
    earned += [kind for credit, kind in CREDIT_MILESTONES if volunteer.credit_micro >= credit * MICRO]
    if not {k for _, k in STREAKS} <= have:
        streak = streak_days(volunteer_id=volunteer_id, today=now.date())
        earned += [kind for days, kind in STREAKS if streak >= days]
    new = [kind for kind in earned if kind not in have]
    Badge.objects.bulk_create([Badge(volunteer_id=volunteer_id, kind=kind, awarded_at=now)
                               for kind in new], ignore_conflicts=True)
    return [str(kind) for kind in new]
