"""One row per periodic job: when it is next due, and who holds it while it runs."""

from django.db import models


class JobLease(models.Model):
    """A periodic job's schedule and lease, shared by every process and machine.

    A process runs the job only after an atomic conditional UPDATE of this row
    (due, and no live lease) changed it: of several racing, exactly one wins.
    """

    name = models.CharField(max_length=64, primary_key=True)
    next_run_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=128, blank=True)
    runs = models.PositiveBigIntegerField(default=0)
    last_finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
