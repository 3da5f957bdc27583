"""Volunteers and their devices. A device authenticates with a token we only store hashed."""

import hashlib
import secrets

from django.conf import settings
from django.db import models


class Volunteer(models.Model):
    """A person donating compute; anonymous until they claim their devices with an account."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="volunteer",
    )
    name = models.CharField(max_length=100)
    show_anonymous = models.BooleanField(default=False)
    # Maintained aggregates, changed only by credit.services.credit_grant (micro-credits).
    credit_micro = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def total_credit(self) -> float:
        return self.credit_micro / 1_000_000


class Device(models.Model):
    volunteer = models.ForeignKey(Volunteer, on_delete=models.CASCADE, related_name="devices")
    token_hash = models.CharField(max_length=64, unique=True)
    client_name = models.CharField(max_length=50, blank=True)
    client_version = models.CharField(max_length=50, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    credit_micro = models.BigIntegerField(default=0)
    # A failed spot check quarantines a device: it gets only known-answer tasks until it
    # passes enough of them, and its results never count toward a quorum meanwhile.
    quarantined = models.BooleanField(default=False)
    quarantine_passes = models.PositiveIntegerField(default=0)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)

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
