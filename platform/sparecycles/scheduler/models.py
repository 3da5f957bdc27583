"""Replicas: one copy of a work unit sent to one device (BOINC's RESULT).

Three orthogonal fields, as in BOINC: server_state (where the replica is),
outcome (what came back) and validate_state (what the validator said).
`status` folds them into the one word people read in the admin.
"""

import secrets
from dataclasses import dataclass

from django.db import models
from django.db.models import Q


def new_task_id() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Cancelled:
    """An in-progress replica taken back from its device (its work unit settled, or its
    batch ended): the device is told to drop the task."""

    device_id: int
    task_id: str


class Replica(models.Model):
    class ServerState(models.TextChoices):
        UNSENT = "unsent", "Unsent"
        IN_PROGRESS = "in_progress", "In progress"
        OVER = "over", "Over"

    class Outcome(models.TextChoices):
        INIT = "init", "—"
        SUCCESS = "success", "Success"
        CLIENT_ERROR = "client_error", "Client error"
        NO_REPLY = "no_reply", "No reply (timed out)"
        DIDNT_NEED = "didnt_need", "Not needed (cancelled)"

    class ValidateState(models.TextChoices):
        INIT = "init", "Not validated yet"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"
        INCONCLUSIVE = "inconclusive", "Inconclusive"
        TOO_LATE = "too_late", "Too late"

    workunit = models.ForeignKey(
        "projects.WorkUnit", on_delete=models.CASCADE, related_name="replicas"
    )
    task_id = models.CharField(max_length=32, unique=True, default=new_task_id, editable=False)
    device = models.ForeignKey(
        "volunteers.Device", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="replicas",
    )
    # Denormalised from device: the distinct-volunteer rule is checked on it.
    volunteer = models.ForeignKey(
        "volunteers.Volunteer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    server_state = models.CharField(
        max_length=16, choices=ServerState.choices, default=ServerState.UNSENT
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.INIT)
    validate_state = models.CharField(
        max_length=16, choices=ValidateState.choices, default=ValidateState.INIT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    # Adaptive replication sent this replica alone to a trusted device.
    solo = models.BooleanField(default=False)
    # The client's network when sent (services.network_of); "" when the rule is off.
    network = models.CharField(max_length=50, blank=True, default="")
    # Reported, and the transitioner has not looked at it yet (BOINC's transition flag).
    # Set with the report, cleared under the work unit's lock by the transitioner; a
    # sweep in housekeeping picks up any left behind by a crash.
    pending = models.BooleanField(default=False)
    # A known-answer task (Sarmenta's spot check): a fresh replica of a work unit whose
    # answer is known — an owner's known answer or an already validated canonical result.
    # Looks like any other task on the wire; judged against that answer, never part of a
    # quorum.
    spot_check = models.BooleanField(default=False)

    class Meta:
        ordering = ["workunit", "id"]
        constraints = [
            # Distinct volunteers per work unit: nobody forms a quorum alone.
            models.UniqueConstraint(
                fields=["workunit", "volunteer"],
                condition=Q(volunteer__isnull=False),
                name="replica_one_per_volunteer",
            ),
            # Distinct networks too: many devices behind one address are one voice.
            models.UniqueConstraint(
                fields=["workunit", "network"],
                condition=~Q(network=""),
                name="replica_one_per_network",
            ),
        ]
        indexes = [
            models.Index(fields=["server_state", "workunit"]),
            models.Index(fields=["device", "server_state"]),
            models.Index(fields=["network"], condition=~Q(network=""), name="replica_network"),
            # The small sets the hot paths look for, kept in partial indexes of their own.
            models.Index(fields=["id"], condition=Q(server_state="unsent"), name="replica_unsent"),
            models.Index(fields=["workunit"], condition=Q(pending=True), name="replica_pending"),
            models.Index(fields=["workunit"], condition=Q(validate_state="inconclusive"),
                         name="replica_inconclusive"),
        ]

    def __str__(self) -> str:
        return f"replica {self.pk} of {self.workunit_id}"

    @property
    def status(self) -> str:
        """One word for people: unsent, in progress, valid, invalid, error, ..."""
        if self.server_state == self.ServerState.UNSENT:
            return "unsent"
        if self.server_state == self.ServerState.IN_PROGRESS:
            return "in progress"
        if self.outcome == self.Outcome.CLIENT_ERROR:
            return "error"
        if self.outcome == self.Outcome.NO_REPLY:
            return "timed out"
        if self.outcome == self.Outcome.DIDNT_NEED:
            return "cancelled"
        return {
            self.ValidateState.INIT: "pending validation",
            self.ValidateState.VALID: "valid",
            self.ValidateState.INVALID: "invalid",
            self.ValidateState.INCONCLUSIVE: "inconclusive",
            self.ValidateState.TOO_LATE: "too late",
        }[self.validate_state]


class HostAppVersion(models.Model):
    """How one device has done on one app version (BOINC's host_app_version).

    Drives the daily quota, adaptive replication and spot-check quarantine.
    Changed only through scheduler.reliability.
    """

    device = models.ForeignKey("volunteers.Device", on_delete=models.CASCADE,
                               related_name="host_app_versions")
    app_version = models.ForeignKey("projects.AppVersion", on_delete=models.CASCADE,
                                    related_name="+")
    consecutive_valid = models.PositiveIntegerField(default=0)
    n_valid = models.PositiveIntegerField(default=0)
    n_invalid = models.PositiveIntegerField(default=0)
    n_error = models.PositiveIntegerField(default=0)
    n_timeout = models.PositiveIntegerField(default=0)
    turnaround_avg_s = models.FloatField(null=True, blank=True)
    max_jobs_per_day = models.PositiveIntegerField()
    jobs_today = models.PositiveIntegerField(default=0)
    quota_day = models.DateField(null=True, blank=True)
    spot_checks_passed = models.PositiveIntegerField(default=0)
    spot_checks_failed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "app_version"], name="hav_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.device} on {self.app_version_id}"
