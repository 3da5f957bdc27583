"""Volunteers, their devices and teams. A device authenticates with a token we only store hashed."""

import hashlib
import secrets

from django.conf import settings
from django.db import models

from sparecycles.text import CleanedTextModel


def new_cross_project_id() -> str:
    """32 random hex digits, like BOINC's user.cross_project_id."""
    return secrets.token_hex(16)


def new_host_cpid() -> str:
    """32 random hex digits: a device's public id in the stats exports (BOINC's host_cpid)."""
    return secrets.token_hex(16)


class Team(CleanedTextModel, models.Model):
    """A team of volunteers; its credit totals are credit's (credit.models.TeamCredit)."""

    text_lines = ("name",)
    text_blocks = ("description",)

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=5000)
    founder = models.ForeignKey("Volunteer", null=True, on_delete=models.SET_NULL,
                                related_name="founded_teams")
    member_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Volunteer(CleanedTextModel, models.Model):
    """A person donating compute; anonymous until they claim their devices with an account.

    Their credit totals are credit's (credit.models.VolunteerCredit).
    """

    text_lines = ("name",)

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="volunteer",
    )
    name = models.CharField(max_length=100)
    show_anonymous = models.BooleanField(
        default=False, help_text="Appear as “Anonymous” on public leaderboards."
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="members")
    # Set when this anonymous volunteer was claimed into an account (volunteer_merge); the
    # row stays because the token ledger keeps naming it.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="merged")
    # Reputation in [0, 1] from the devices' validation history (validation.reputation).
    reputation = models.FloatField(default=0.5)
    created_at = models.DateTimeField(auto_now_add=True)
    # BOINC's cross-project id: random, never changes; the exported cpid is
    # md5(cross_project_id + email) when a verified email exists, else derived from it alone.
    cross_project_id = models.CharField(max_length=32, unique=True, default=new_cross_project_id)
    # When the account's email (user.email) was last verified; None: unverified or none.
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # The privacy choice: appear in the daily BOINC stats exports.
    in_stats_exports = models.BooleanField(
        default=True, help_text="Appear in the daily statistics exports that stats sites import."
    )
    # Set when the volunteer deleted their account: the row stays, anonymised, because the
    # ledger and the credit totals keep naming it; it is listed in user_deleted.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The cpid the exports gave this volunteer when the account was deleted (its email is
    # gone then, so it cannot be recomputed): user_deleted names it, as BOINC's
    # user_deleted.public_cross_project_id does.
    deleted_cpid = models.CharField(max_length=32, blank=True, default="")
    # The volunteer page's settings (volunteers/compute_settings.py), saved by a logged-in
    # browser so that a new browser of the account starts with them; {} until then.
    compute_settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def public_name(self) -> str:
        return "Anonymous" if self.show_anonymous or self.deleted_at else self.name


class Device(CleanedTextModel, models.Model):
    """One browser or client. Its credit is summed from its grants on demand (no hot row)."""

    # What the client says of itself in hello is typed by whoever wrote the client.
    text_lines = ("name", "client_name", "client_version", "os_name", "os_version", "p_vendor",
                  "p_model")

    volunteer = models.ForeignKey(Volunteer, on_delete=models.CASCADE, related_name="devices")
    token_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    client_name = models.CharField(max_length=50, blank=True)
    client_version = models.CharField(max_length=50, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    # A failed spot check quarantines a device: it gets only known-answer tasks until it
    # passes enough of them, and its results never count toward a quorum meanwhile.
    quarantined = models.BooleanField(default=False)
    quarantine_passes = models.PositiveIntegerField(default=0)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    # What the stats exports say about the device (BOINC's host fields), as the browser
    # reported it in hello's optional `host` object: only what a page can honestly know.
    # Core count and memory stay in capabilities.
    host_cpid = models.CharField(max_length=32, unique=True, default=new_host_cpid)
    os_name = models.CharField(max_length=64, blank=True)  # the user agent's platform
    os_version = models.CharField(max_length=64, blank=True)
    p_vendor = models.CharField(max_length=64, blank=True)  # CPU architecture, if told
    p_model = models.CharField(max_length=128, blank=True)  # the browser and its version
    # Floating-point operations per second measured by the page: a browser estimate.
    p_fpops = models.FloatField(null=True, blank=True)
    timezone = models.IntegerField(null=True, blank=True)  # local time − UTC, in seconds

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"device {self.pk} of {self.volunteer}"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def public_id(self) -> str:
        return f"d{self.pk}"

    @property
    def label(self) -> str:
        caps = self.capabilities or {}
        kind = "phone" if caps.get("mobile") else "computer"
        return self.name or f"{self.client_name or 'client'} {kind} #{self.pk}"


class DeviceClaimCode(models.Model):
    """A short code a device shows so its owner can claim it from another, logged-in browser."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="claim_codes")
    code = models.CharField(max_length=12, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.code
