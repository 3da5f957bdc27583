"""Credit granted for validated work, in BOINC's unit, stored as integer micro-credits.

1 credit = 1/200 of a day of a 1-GFLOPS machine, so credit = FLOPs × 200 / 86400e9.
"""

from django.db import models

MICRO = 1_000_000
FLOPS_PER_CREDIT = 86_400e9 / 200  # 432e9


def credit_micro_for_flops(flops: float) -> int:
    return max(0, round(flops / FLOPS_PER_CREDIT * MICRO))


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
