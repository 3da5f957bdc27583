"""Credit granted for validated work, in BOINC's unit, stored as integer micro-credits.

1 credit = 1/200 of a day of a 1-GFLOPS machine, so credit = FLOPs × 200 / 86400e9.
"""

import time

from django.db import models

from .averages import rac_key, rac_now

MICRO = 1_000_000
FLOPS_PER_CREDIT = 86_400e9 / 200  # 432e9


def credit_micro_for_flops(flops: float) -> int:
    return max(0, round(flops / FLOPS_PER_CREDIT * MICRO))


class CreditAggregate(models.Model):
    """Maintained credit totals for a volunteer, device, team or project.

    Changed only by credit.services.credit_grant, under the row's lock.
    """

    credit_micro = models.BigIntegerField(default=0, db_index=True)
    rac = models.FloatField(default=0)  # credit per day, as of rac_time
    rac_time = models.FloatField(null=True, blank=True)  # unix time
    rac_key = models.FloatField(default=-1e9, db_index=True)  # see averages.rac_key

    class Meta:
        abstract = True

    @property
    def total_credit(self) -> float:
        return self.credit_micro / MICRO

    @property
    def recent_average_credit(self) -> float:
        return rac_now(rac=self.rac, rac_time=self.rac_time, now=time.time())

    def refresh_rac_key(self) -> None:
        self.rac_key = rac_key(rac=self.rac, rac_time=self.rac_time)


class VolunteerProjectCredit(CreditAggregate):
    """A volunteer's credit within one project: the rows of the per-project leaderboards.

    Maintained by credit_grant beside the volunteer's own totals (under the volunteer's
    row lock, which also serialises the creation of a missing row), merged by
    credit.services.project_credit_merge when an anonymous volunteer is claimed.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    volunteer = models.ForeignKey("volunteers.Volunteer", on_delete=models.CASCADE,
                                  related_name="project_credits")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "volunteer"], name="project_credit_once"),
        ]
        indexes = [
            models.Index(fields=["project", "-credit_micro", "id"], name="project_credit_rank"),
            models.Index(fields=["project", "-rac_key", "id"], name="project_rac_rank"),
        ]

    def __str__(self) -> str:
        return f"{self.credit_micro / MICRO:.2f} credit of {self.volunteer_id} in {self.project_id}"


class CreditGrant(models.Model):
    """One grant for one valid replica; the OneToOne makes a second grant impossible."""

    replica = models.OneToOneField(
        "scheduler.Replica", on_delete=models.PROTECT, related_name="credit_grant"
    )
    workunit = models.ForeignKey("projects.WorkUnit", on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+")
    volunteer = models.ForeignKey(
        "volunteers.Volunteer", on_delete=models.PROTECT, related_name="credit_grants"
    )
    device = models.ForeignKey(
        "volunteers.Device", null=True, on_delete=models.SET_NULL, related_name="credit_grants"
    )
    amount_micro = models.BigIntegerField()
    granted_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["volunteer", "granted_at"])]

    def __str__(self) -> str:
        return f"{self.amount_micro / MICRO:.2f} credit to {self.volunteer_id}"

    @property
    def amount(self) -> float:
        return self.amount_micro / MICRO


from .reversals import CreditReversal  # noqa: E402,F401  (the stand-in's model; see there)
