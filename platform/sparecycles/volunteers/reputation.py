"""Volunteer reputation: how far their devices' results can be trusted, in [0, 1].

A Beta(1, 1) prior updated by the devices' validation history: valid results
count for, invalid ones against (three times as hard, as they are what
cheating looks like), errors and timeouts a little against, and each failed
spot check as much as ten invalid results. New volunteers start at 0.5.
"""

from django.db.models import Sum

from .models import Volunteer


def reputation_score(*, valid: int, invalid: int, errors: int, timeouts: int,
                     spot_failures: int) -> float:
    good = 1 + valid
    bad = 1 + 3 * invalid + 0.5 * (errors + timeouts) + 30 * spot_failures
    return good / (good + bad)


def reputation_refresh(*, volunteer_id: int) -> float:
    from sparecycles.scheduler.models import HostAppVersion

    totals = HostAppVersion.objects.filter(device__volunteer_id=volunteer_id).aggregate(
        valid=Sum("n_valid"), invalid=Sum("n_invalid"), errors=Sum("n_error"),
        timeouts=Sum("n_timeout"), spot_failures=Sum("spot_checks_failed"))
    score = reputation_score(**{k: v or 0 for k, v in totals.items()})
    Volunteer.objects.filter(pk=volunteer_id).update(reputation=score)
    return score
