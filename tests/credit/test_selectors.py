"""credit.selectors: many volunteers' stats in one query agree with one at a time."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sparecycles.credit.models import VolunteerCredit
from sparecycles.credit.selectors import volunteer_stats, volunteers_stats
from sparecycles.volunteers.models import Volunteer


def test_volunteers_stats_match_volunteer_stats_with_ties_and_no_credit(db):
    amounts = [5, 9, 5, 0, 9, 1]  # ties are broken by age (pk), as on the board
    volunteers = [Volunteer.objects.create(name=f"v{i}") for i in range(len(amounts) + 1)]
    for volunteer, amount in zip(volunteers, amounts, strict=False):
        VolunteerCredit.objects.create(volunteer=volunteer, credit_micro=amount, rac=amount,
                                       rac_time=1.0)
    ids = [v.pk for v in volunteers]  # the last one has no credit row at all
    with CaptureQueriesContext(connection) as queries:
        many = volunteers_stats(ids)
    assert len(queries) == 1
    for pk in ids:
        one = volunteer_stats(volunteer_id=pk)
        assert many[pk]["credit_micro"] == one["credit_micro"]
        assert many[pk]["rank"] == one["rank"]
        assert abs(many[pk]["rac"] - one["rac"]) < 1e-6
    assert [many[pk]["rank"] for pk in ids] == [3, 1, 4, None, 2, 5, None]


def test_volunteers_stats_of_nobody_and_of_unknown_ids(db):
    assert volunteers_stats([]) == {}
    assert volunteers_stats([987654])[987654]["rank"] is None
