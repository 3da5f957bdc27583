"""What validation knows about devices (credibility) and what it decided (the audit).

Credibility follows Sarmenta ("Sabotage-tolerance mechanisms for volunteer computing
systems", 2002): a device's credibility grows with the results that something
trustworthy confirmed — a known-answer spot check, or agreement with an established
device — and a device that fails a spot check is blacklisted (quarantined) until it
passes spot checks again. Changed only through validation.services.
"""

from django.db import models


class DeviceCredibility(models.Model):
    """How far validation trusts one device. The row appears with the device's first verdict."""

    device = models.OneToOneField("volunteers.Device", primary_key=True,
                                  on_delete=models.CASCADE, related_name="credibility")
    # Results confirmed by a spot check or by agreeing with an established device (Sarmenta's
    # k). ESTABLISHED_AFTER of them make the device "established": able to settle a quorum.
    confirmed = models.PositiveIntegerField(default=0)
    spot_checks_passed = models.PositiveIntegerField(default=0)
    spot_checks_failed = models.PositiveIntegerField(default=0)
    # Settled work units in which it was in the minority, since its last clean check.
    minority = models.PositiveIntegerField(default=0)
    # The last spot check it passed: work it settled before this stays settled if it is
    # caught later (everything after is revalidated).
    last_clean_check_at = models.DateTimeField(null=True, blank=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "device credibility"

    def __str__(self) -> str:
        return f"credibility of device {self.device_id}"


class ValidationAudit(models.Model):
    """One row per validation decision, quarantine, release and revalidation."""

    class Kind(models.TextChoices):
        COMPLETED = "completed", "Canonical result chosen"
        INCONCLUSIVE = "inconclusive", "Not yet credible: more replicas"
        FAILED = "failed", "Failed"
        VALIDATOR_ERROR = "validator_error", "Validator error"
        SPOT_CHECK = "spot_check", "Spot check judged"
        LATE = "late", "Late result (no credit)"
        QUARANTINE = "quarantine", "Device quarantined"
        RELEASE = "release", "Device released from quarantine"
        REVALIDATION = "revalidation", "Work unit sent back to validation"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    workunit = models.ForeignKey("projects.WorkUnit", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("volunteers.Device", null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    # The estimated probability that the chosen (or best) result group is correct.
    credibility = models.FloatField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workunit"]), models.Index(fields=["device", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M:%S})"
