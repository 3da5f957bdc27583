"""credit/badges.py: what a profile's badge cards say, earned or still ahead."""

import datetime as dt

import pytest

from sparecycles.credit.badges import volunteer_badges
from sparecycles.credit.models import MICRO, Badge, VolunteerCredit
from sparecycles.volunteers.models import Volunteer

pytestmark = pytest.mark.django_db


def test_milestones_ahead_say_how_far_along_the_volunteer_is():
    volunteer = Volunteer.objects.create(name="Ada")
    VolunteerCredit.objects.create(volunteer=volunteer, credit_micro=MICRO // 20)  # 0.05
    Badge.objects.create(volunteer=volunteer, kind=Badge.Kind.FIRST_VALID,
                         awarded_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    views = {view.kind: view for view in volunteer_badges(volunteer_id=volunteer.pk)}
    first = views[Badge.Kind.FIRST_VALID]
    assert first.awarded_at is not None and first.progress == "" and first.goal == 0
    thousand = views[Badge.Kind.CREDIT_1K]
    assert thousand.label == "1,000 credit"
    assert thousand.progress == "0.050000 of 1,000 so far."
    assert (thousand.value, thousand.goal) == (0.05, 1000)
    assert views[Badge.Kind.STREAK_7].progress == "0 of 7 days in a row so far."
    assert [view.kind for view in volunteer_badges(volunteer_id=volunteer.pk)][0] == (
        Badge.Kind.FIRST_VALID)  # earned ones first


def test_a_newcomer_reads_what_each_badge_needs():
    volunteer = Volunteer.objects.create(name="New")
    views = {view.kind: view for view in volunteer_badges(volunteer_id=volunteer.pk)}
    assert views[Badge.Kind.FIRST_VALID].progress == (
        "Comes with your first result the quorum confirms.")
    assert views[Badge.Kind.CREDIT_100K].progress == "0.000000 of 100,000 so far."



def test_one_grant_transaction_awards_every_volunteers_badges_in_three_queries():
    """credit_grant awards the badges of all its volunteers together (streaks through it:
    tests/credit/test_services.py)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sparecycles.credit.badges import Earning, badges_award_many

    now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
    volunteers = [Volunteer.objects.create(name=f"V{i}") for i in range(6)]
    old_hand = volunteers[-1]  # had credit before, crosses 10,000 now
    Badge.objects.create(volunteer=old_hand, kind=Badge.Kind.FIRST_VALID, awarded_at=now)
    earnings = [Earning(v.pk, 2_000 * MICRO, 0, None) for v in volunteers[:-1]]
    earnings.append(Earning(old_hand.pk, 10_001 * MICRO, 9_999 * MICRO, now.timestamp()))
    with CaptureQueriesContext(connection) as queries:
        new = badges_award_many(earnings, now=now)
    assert len([q for q in queries if "SAVEPOINT" not in q["sql"]]) == 3
    for volunteer in volunteers[:-1]:
        assert new[volunteer.pk] == ["first_valid", "credit_1k"]
    assert new[old_hand.pk] == ["credit_10k"]
    assert Badge.objects.count() == 5 * 2 + 2
    assert badges_award_many(earnings, now=now) == {}  # each is awarded once
