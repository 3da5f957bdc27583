"""A background job in the database: any web process can read its progress, and a job
whose process died is noticed (its lease ends, its holder is gone) and marked failed."""

from django.conf import settings
from django.db import models


class BackgroundJob(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.CharField(max_length=32, primary_key=True)  # uuid4 hex: unguessable
    kind = models.CharField(max_length=64)                  # the handler, e.g. "projects.upload"
    name = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    payload = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    errors = models.JSONField(default=list)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    holder = models.CharField(max_length=128, blank=True)   # "host:pid" while running
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "lease_until"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"
