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
