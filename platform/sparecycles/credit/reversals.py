"""MINIMAL STAND-IN for engineer "reversal"'s credit reversal service — the lead merges
theirs over this module. Only the signature is the contract:

    credit_reverse_many(*, replica_ids: list[int], reason: str) -> int

Reverses the credit of the given replicas with reversal rows (CreditReversal: the grant
row itself is never edited), at most once per replica (the OneToOne on grant), and
takes the amount back off the maintained totals of the volunteer, project, team and
per-project rows under the usual lock order. The ledger clawback of tokens already
paid is NOT done here (that is the real service's job).
"""

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from sparecycles.db.bulk import rows_update


class CreditReversal(models.Model):
    """The credit of one grant taken back (validation revalidated its result)."""

    grant = models.OneToOneField("credit.CreditGrant", on_delete=models.PROTECT,
                                 related_name="reversal")
    amount_micro = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    reversed_at = models.DateTimeField()

    class Meta:
        app_label = "credit"

    def __str__(self) -> str:
        return f"reversal of grant {self.grant_id}"


def credit_reverse_many(*, replica_ids: list[int], reason: str) -> int:
    """Reverse the credit granted for these replicas, once each; returns how many."""
    from sparecycles.projects.models import Project
    from sparecycles.volunteers.models import Team, Volunteer

    from .models import CreditGrant, VolunteerProjectCredit

    grants = list(CreditGrant.objects.filter(replica_id__in=list(replica_ids))
                  .exclude(reversal__isnull=False).order_by("pk"))
    if not grants:
        return 0
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                CreditReversal.objects.bulk_create([
                    CreditReversal(grant=g, amount_micro=g.amount_micro, reason=reason[:300],
                                   reversed_at=now) for g in grants])
        except IntegrityError:  # reversed meanwhile by another transaction
            return 0
        volunteers = {v.pk: v for v in Volunteer.objects.select_for_update(no_key=True)
                      .order_by("pk").filter(pk__in={g.volunteer_id for g in grants})}
        projects = {p.pk: p for p in Project.objects.select_for_update(no_key=True)
                    .order_by("pk").filter(pk__in={g.project_id for g in grants})}
        teams = {t.pk: t for t in Team.objects.select_for_update(no_key=True).order_by("pk")
                 .filter(pk__in={v.team_id for v in volunteers.values() if v.team_id})}
        per_project = {(r.volunteer_id, r.project_id): r for r in
                       VolunteerProjectCredit.objects.select_for_update(no_key=True)
                       .order_by("pk").filter(volunteer_id__in=list(volunteers),
                                              project_id__in=list(projects))}
        for grant in grants:
            volunteer = volunteers[grant.volunteer_id]
            rows = [volunteer, projects[grant.project_id],
                    per_project.get((volunteer.pk, grant.project_id))]
            if volunteer.team_id in teams:
                rows.append(teams[volunteer.team_id])
            for row in rows:
                if row is not None:
                    row.credit_micro = max(0, row.credit_micro - grant.amount_micro)
        rows_update(Volunteer, volunteers.values(), ["credit_micro"])
        rows_update(Project, projects.values(), ["credit_micro"])
        if teams:
            rows_update(Team, teams.values(), ["credit_micro"])
        if per_project:
            rows_update(VolunteerProjectCredit, per_project.values(), ["credit_micro"])
    return len(grants)
