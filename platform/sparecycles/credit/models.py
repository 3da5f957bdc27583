"""Credit granted for validated work, in BOINC's unit, stored as integer micro-credits.

1 credit = 1/200 of a day of a 1-GFLOPS machine, so credit = FLOPs × 200 / 86400e9.
"""

import time

from django.conf import settings
from django.db import models

from .averages import KEY_FLOOR, rac_key, rac_now, rac_update, rac_withdraw

MICRO = 1_000_000
FLOPS_PER_CREDIT = 86_400e9 / 200  # 432e9


def credit_micro_for_flops(flops: float) -> int:
    return max(0, round(flops / FLOPS_PER_CREDIT * MICRO))


class CreditTotals(models.Model):
    """Maintained credit totals: a total in micro-credits and a recent average (RAC).

    The base of credit's own rows (VolunteerCredit, TeamCredit, ProjectCredit,
    VolunteerProjectCredit). Changed only by credit's services, under the row's lock;
    accrual, withdrawal and merging are written once, here.
    """

    credit_micro = models.BigIntegerField(default=0, db_index=True)
    rac = models.FloatField(default=0)  # credit per day, as of rac_time
    rac_time = models.FloatField(null=True, blank=True)  # unix time
    rac_key = models.FloatField(default=KEY_FLOOR, db_index=True)  # see averages.rac_key

    TOTAL_FIELDS = ["credit_micro", "rac", "rac_time", "rac_key"]

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

    def accrue(self, amount_micro: int, *, now: float, start: float | None) -> None:
        """Add one grant of `amount_micro` made at `now` (work begun at `start`), in memory."""
        self.credit_micro += amount_micro
        self.rac = rac_update(rac=self.rac, rac_time=self.rac_time,
                              credit=amount_micro / MICRO, now=now, start=start)
        self.rac_time = now
        self.refresh_rac_key()

    def withdraw(self, amount_micro: int, *, granted: float, now: float) -> None:
        """Take out one grant of `amount_micro` made at `granted`, in memory.

        Never below zero: a team's total lacks the grant if the volunteer joined it after.
        """
        self.credit_micro = max(0, self.credit_micro - amount_micro)
        self.rac = rac_withdraw(rac=self.rac, rac_time=self.rac_time,
                                credit=amount_micro / MICRO, granted=granted, now=now)
        if self.rac_time is not None:
            self.rac_time = now
        self.refresh_rac_key()

    def absorb(self, other: "CreditTotals", *, now: float) -> None:
        """Fold `other`'s totals into these (a merge), in memory; `other` is emptied."""
        self.credit_micro += other.credit_micro
        self.rac = (rac_now(rac=self.rac, rac_time=self.rac_time, now=now)
                    + rac_now(rac=other.rac, rac_time=other.rac_time, now=now))
        self.rac_time = now
        self.refresh_rac_key()
        other.credit_micro, other.rac, other.rac_key = 0, 0.0, KEY_FLOOR


class VolunteerCredit(CreditTotals):
    """A volunteer's credit totals: the rows of the volunteer leaderboard.

    One per volunteer that ever had credit (made by the first grant); the volunteer's id
    is the primary key, so ties on the boards fall to the older volunteer as before.
    """

    volunteer = models.OneToOneField("volunteers.Volunteer", primary_key=True,
                                     on_delete=models.CASCADE, related_name="credit")

    class Meta:
        indexes = [
            models.Index(fields=["-credit_micro", "volunteer"], name="vcredit_credit_rank"),
            models.Index(fields=["-rac_key", "volunteer"], name="vcredit_rac_rank"),
        ]

    def __str__(self) -> str:
        return f"{self.credit_micro / MICRO:.2f} credit of volunteer {self.volunteer_id}"


class TeamCredit(CreditTotals):
    """A team's credit totals (credit its members earned while in it)."""

    team = models.OneToOneField("volunteers.Team", primary_key=True, on_delete=models.CASCADE,
                                related_name="credit")

    class Meta:
        indexes = [models.Index(fields=["-credit_micro", "team"], name="tcredit_credit_rank"),
                   models.Index(fields=["-rac_key", "team"], name="tcredit_rac_rank")]

    def __str__(self) -> str:
        return f"{self.credit_micro / MICRO:.2f} credit of team {self.team_id}"


class ProjectCredit(CreditTotals):
    """A project's credit totals (all credit granted for its work)."""

    project = models.OneToOneField("projects.Project", primary_key=True,
                                   on_delete=models.CASCADE, related_name="credit")

    class Meta:
        indexes = [models.Index(fields=["-credit_micro", "project"], name="pcredit_credit_rank")]

    def __str__(self) -> str:
        return f"{self.credit_micro / MICRO:.2f} credit of project {self.project_id}"


class VolunteerProjectCredit(CreditTotals):
    """A volunteer's credit within one project: the rows of the per-project leaderboards.

    Maintained by credit_grant beside the volunteer's own totals (under the volunteer's
    credit row lock, which also serialises the creation of a missing row), merged by
    credit.services.volunteer_credit_merge when an anonymous volunteer is claimed.
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


class FlopsApproval(models.Model):
    """A superuser's approval of an app version's declared FLOPs estimate.

    Without one, the estimate can only lower credit below what was measured
    (credit.normalisation.bounded_by_declaration); with one, up to `flops_per_unit` of the
    estimate is granted as declared. Rows are never edited: the newest row of an app
    version is in force, and a revocation is a row with `revoked` set
    (credit.services.flops_approve / flops_approval_revoke).
    """

    app_version = models.ForeignKey("projects.AppVersion", on_delete=models.PROTECT,
                                    related_name="flops_approvals")
    flops_per_unit = models.FloatField(help_text="The highest estimate approved.")
    revoked = models.BooleanField(default=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-approved_at", "-id"]
        indexes = [models.Index(fields=["app_version", "-id"], name="flops_approval_latest")]

    def __str__(self) -> str:
        verb = "revoked" if self.revoked else f"approved {self.flops_per_unit:g} FLOPs"
        return f"{self.app_version}: {verb} by {self.approved_by}"
class CreditReversal(models.Model):
    """Credit taken back from one grant, by credit.services.credit_reverse_many.

    The grant row is never edited or deleted: a reversal is a row of its own beside it,
    for the grant's full amount. The OneToOne on grant is what makes a second reversal of
    the same grant impossible, whatever the code above it does. The ledger reads these
    rows at each epoch close (ledger.clawback): a reversed grant not yet in a closed epoch
    leaves that epoch's credit basis; one already paid becomes a debt of the account it
    was paid to, deducted from its next payouts.
    """

    grant = models.OneToOneField(CreditGrant, on_delete=models.PROTECT, related_name="reversal")
    # Copied from the grant (grants never change) so totals need no join.
    replica = models.OneToOneField(
        "scheduler.Replica", on_delete=models.PROTECT, related_name="credit_reversal"
    )
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+")
    # The volunteer whose totals were reduced: the grant's, or the account it was merged into.
    volunteer = models.ForeignKey(
        "volunteers.Volunteer", on_delete=models.PROTECT, related_name="credit_reversals"
    )
    device = models.ForeignKey(
        "volunteers.Device", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The team whose total was reduced: the volunteer's team when the reversal was made
    # (grants do not record the team they counted for).
    team = models.ForeignKey(
        "volunteers.Team", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_micro = models.BigIntegerField()  # the credit taken back: the grant's amount
    reason = models.CharField(max_length=200)
    reversed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-reversed_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_micro__gte=0),
                                   name="credit_reversal_not_negative"),
        ]

    def __str__(self) -> str:
        return (f"−{self.amount_micro / MICRO:.6f} credit of {self.volunteer_id} "
                f"(grant {self.grant_id})")


class Badge(models.Model):
    """A milestone a volunteer reached with their credit (credit.badges awards them)."""

    class Kind(models.TextChoices):
        FIRST_VALID = "first_valid", "First valid result"
        CREDIT_1K = "credit_1k", "1,000 credit"
        CREDIT_10K = "credit_10k", "10,000 credit"
        CREDIT_100K = "credit_100k", "100,000 credit"
        STREAK_7 = "streak_7", "7-day streak"
        STREAK_30 = "streak_30", "30-day streak"

    volunteer = models.ForeignKey("volunteers.Volunteer", on_delete=models.CASCADE,
                                  related_name="badges")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    awarded_at = models.DateTimeField()

    class Meta:
        ordering = ["awarded_at"]
        constraints = [
            models.UniqueConstraint(fields=["volunteer", "kind"], name="badge_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.volunteer}"
