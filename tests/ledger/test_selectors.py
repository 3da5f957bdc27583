"""ledger.selectors read by pages: the epoch estimate of the volunteer page."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sparecycles.ledger.selectors import epoch_estimate

from .conftest import at


def _unfiltered_sums(queries) -> int:
    """Queries summing every unpaid grant (no volunteer in their WHERE)."""
    return sum(1 for q in queries if "SUM(" in q["sql"].upper()
               and "credit_creditgrant" in q["sql"] and "volunteer_id\" =" not in q["sql"]
               and "volunteer_id =" not in q["sql"])


def test_everyones_unpaid_credit_is_summed_once_a_minute_not_per_earnings_poll(
        ledger, volunteers, grant):
    """Red team: /devices/earnings/ (unauthenticated, polled by every device) summed every
    unpaid grant of the site on each call."""
    ada, grace, *_ = volunteers
    grant(ada, 3_000_000, at(0, 10))
    grant(grace, 1_000_000, at(0, 20))
    now = at(0, 30)
    with CaptureQueriesContext(connection) as first:
        estimate = epoch_estimate(volunteer_id=ada.pk, now=now)
    assert estimate.estimated_micro == estimate.emission_micro * 3 // 4
    assert _unfiltered_sums(first.captured_queries) == 1
    with CaptureQueriesContext(connection) as polls:
        for volunteer in (ada, grace, ada):
            epoch_estimate(volunteer_id=volunteer.pk, now=now)
    assert _unfiltered_sums(polls.captured_queries) == 0


def test_a_stale_total_never_estimates_more_than_the_emission(ledger, volunteers, grant):
    ada, grace, *_ = volunteers
    grant(ada, 1_000_000, at(0, 10))
    epoch_estimate(volunteer_id=ada.pk, now=at(0, 20))  # the total is cached: 1 credit
    grant(grace, 5_000_000, at(0, 30))
    estimate = epoch_estimate(volunteer_id=grace.pk, now=at(0, 40))
    assert 0 < estimate.estimated_micro <= estimate.emission_micro
