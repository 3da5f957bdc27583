"""Volunteer reputation: how far their devices' results can be trusted, in [0, 1].

A Beta(1, 1) prior updated by the devices' validation history: valid results
count for, invalid ones against (three times as hard, as they are what
cheating looks like), errors and timeouts a little against, and each failed
spot check as much as ten invalid results. New volunteers start at 0.5.

Kept with validation, which decides the verdicts it is computed from: the transitioner
refreshes the volunteers whose devices' records moved (scheduler.reliability.hosts_record
says which), and a device claim refreshes the account it joins.
"""

from django.db.models import Sum

from sparecycles.db.bulk import rows_update
from sparecycles.scheduler.models import HostAppVersion
from sparecycles.volunteers.models import Volunteer


def reputation_score(*, valid: int, invalid: int, errors: int, timeouts: int,
                     spot_failures: int) -> float:
    good = 1 + valid
    bad = 1 + 3 * invalid + 0.5 * (errors + timeouts) + 30 * spot_failures
    return good / (good + bad)


def reputation_refresh(*, volunteer_id: int) -> float:
    return reputations_refresh(volunteer_ids=[volunteer_id])[volunteer_id]


def reputations_refresh(*, volunteer_ids: list[int]) -> dict[int, float]:
    """Recompute these volunteers' reputations from their devices' records (one query
    to read, one to write)."""
    scores = {pk: reputation_score(valid=0, invalid=0, errors=0, timeouts=0, spot_failures=0)
              for pk in volunteer_ids}
    rows = (HostAppVersion.objects.filter(device__volunteer_id__in=volunteer_ids)
            .values("device__volunteer_id")
            .annotate(valid=Sum("n_valid"), invalid=Sum("n_invalid"), errors=Sum("n_error"),
                      timeouts=Sum("n_timeout"), spot_failures=Sum("spot_checks_failed")))
    for row in rows:
        pk = row.pop("device__volunteer_id")
        scores[pk] = reputation_score(**{k: v or 0 for k, v in row.items()})
    volunteers = [Volunteer(pk=pk, reputation=score) for pk, score in sorted(scores.items())]
    rows_update(Volunteer, volunteers, ["reputation"])
    return scores
