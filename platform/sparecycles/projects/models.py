"""Projects own apps; an app has immutable versions; work units come in batches.

Vocabulary follows BOINC (db/boinc_db_types.h): a WorkUnit carries
min_quorum, target_nresults, max_error_results, max_total_results,
max_success_results and delay_bound; its replicas (BOINC's "results") live in
the scheduler app.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from sparecycles.text import CleanedTextModel


class Project(CleanedTextModel, models.Model):
    """A project; its credit totals are credit's (credit.models.ProjectCredit)."""

    text_lines = ("title",)
    text_blocks = ("description",)

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="owned_projects")
    is_public = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Runtime(models.TextChoices):
    PYODIDE = "pyodide", "Python (Pyodide)"
    WASM = "wasm", "WebAssembly"


class Validator(models.TextChoices):
    EXACT = "exact", "Exact match of the JSON output"
    TOLERANCE = "tolerance", "Numbers equal within a tolerance"
    CUSTOM = "custom", "Custom equivalent(a, b) from validate.py"


class OutputView(models.TextChoices):
    """How the public project page shows an app's validated outputs."""

    NONE = "", "Not shown"
    IMAGE_TILES = "image-tiles", "Image tiles (x0, y0, width, height, iterations)"


class App(CleanedTextModel, models.Model):
    """A program volunteers run. Its name appears in task URLs, so it is global."""

    text_lines = ("title",)
    text_blocks = ("description",)

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="apps")
    name = models.SlugField(unique=True, help_text="Short name used in URLs, e.g. mandelbrot.")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    validator = models.CharField(max_length=16, choices=Validator.choices, default=Validator.EXACT)
    validator_options = models.JSONField(
        default=dict, blank=True, help_text='For tolerance: {"abs_tol": 1e-9, "rel_tol": 0}.'
    )
    validate_code = models.TextField(
        blank=True, help_text="For the custom validator: Python defining equivalent(a, b) -> bool."
    )
    # Scheduling and sabotage tolerance (BOINC's adaptive replication, Sarmenta's spot checks).
    adaptive_replication = models.BooleanField(
        default=False,
        help_text="Let a device with a long run of valid results compute a work unit alone, "
                  "with probability 1 − 1/consecutive_valid.",
    )
    adaptive_threshold = models.PositiveIntegerField(
        default=10, help_text="consecutive_valid a device needs before it may compute alone."
    )
    spot_check_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="At least this share of tasks are known-answer spot checks (0 to 1). "
                  "Automatic spot checks run anyway: half of a new device's tasks, "
                  "falling to 2% as its credibility grows.",
    )
    credibility_threshold = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.5), MaxValueValidator(0.999999)],
        help_text="Accept a canonical result when the estimated probability that it is "
                  "correct (from the agreeing devices' credibility) reaches this; otherwise "
                  "issue more replicas. 1 − the error rate you accept.",
    )
    min_memory_mb = models.PositiveIntegerField(
        default=0, help_text="Devices reporting less memory get no tasks of this app (0: any)."
    )
    allow_mobile = models.BooleanField(default=True, help_text="Send tasks to phones too.")
    output_view = models.CharField(
        max_length=32, choices=OutputView.choices, default=OutputView.NONE, blank=True,
        help_text="Show validated outputs on the public project page, e.g. as a picture "
                  "assembled from Mandelbrot tiles.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> "AppVersion | None":
        return self.versions.order_by("-number").first()


class AppVersion(models.Model):
    """One immutable build of an app: the code volunteers fetch and hash-check."""

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    runtime = models.CharField(max_length=16, choices=Runtime.choices, default=Runtime.PYODIDE)
    entry = models.CharField(max_length=100, default="main")
    code = models.BinaryField()
    sha256 = models.CharField(max_length=64, editable=False)
    packages = models.JSONField(default=list, blank=True)
    flops_per_unit = models.FloatField(
        default=1e9, validators=[MinValueValidator(0)], help_text="Estimated FLOPs per work unit."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app__name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["app", "number"], name="appversion_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.app.name} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("An app version is immutable; upload a new version instead.")
        self.sha256 = self.hash_code(bytes(self.code))
        super().save(*args, **kwargs)

    @staticmethod
    def hash_code(code: bytes) -> str:
        return hashlib.sha256(code).hexdigest()

    @property
    def code_url(self) -> str:
        return f"/apps/{self.app.name}/{self.number}/code"

    def wheel_url(self, filename: str) -> str:
        return f"/apps/{self.app.name}/{self.number}/wheels/{filename}"


class AppWheel(models.Model):
    """A pure-Python wheel an app version needs, served by us at AppVersion.wheel_url.

    Listed in the version's `packages` as "<url>#sha256=<hash>" (pip's URL-hash form),
    so volunteers' workers fetch it from this site and check it before installing.
    """

    app_version = models.ForeignKey(AppVersion, on_delete=models.CASCADE, related_name="wheels")
    filename = models.CharField(max_length=200)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["app_version", "filename"]
        constraints = [
            models.UniqueConstraint(fields=["app_version", "filename"], name="appwheel_unique"),
        ]

    def __str__(self) -> str:
        return self.filename


class Batch(CleanedTextModel, models.Model):
    """A set of work units submitted together by a project owner."""

    text_lines = ("name",)

    class State(models.TextChoices):
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        ABORTED = "aborted", "Aborted"
        RETIRED = "retired", "Retired"

    app_version = models.ForeignKey(AppVersion, on_delete=models.PROTECT, related_name="batches")
    name = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.name} ({self.app_version})"


class QuorumPolicy(models.Model):
    """BOINC's replication parameters, shared by the defaults and each work unit."""

    min_quorum = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    target_nresults = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_error_results = models.PositiveSmallIntegerField(default=3,
                                                         validators=[MinValueValidator(1)])
    max_total_results = models.PositiveSmallIntegerField(default=6,
                                                         validators=[MinValueValidator(1)])
    max_success_results = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1)]
    )
    delay_bound = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)], help_text="Seconds a volunteer has."
    )

    class Meta:
        abstract = True


class WorkUnit(QuorumPolicy):
    """One job: an input, replicated to several volunteers until a quorum agrees."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed (canonical result)"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="workunits")
    app_version = models.ForeignKey(AppVersion, on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveIntegerField(help_text="Position in its batch, from 1.")
    input = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    canonical_replica = models.ForeignKey(
        "scheduler.Replica", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    canonical_output = models.JSONField(null=True, blank=True)
    # Set on known-answer work units: their replicas are spot checks, judged against this.
    known_output = models.JSONField(null=True, blank=True)
    error_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When validation last sent it back because a device that helped settle it was caught:
    # owners see it on the batch page, in the API and in downloads.
    revalidated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "seq"], name="workunit_unique_seq"),
            models.CheckConstraint(
                condition=Q(min_quorum__lte=models.F("target_nresults")),
                name="workunit_quorum_le_target",
            ),
            models.CheckConstraint(
                condition=Q(target_nresults__lte=models.F("max_total_results")),
                name="workunit_target_le_total",
            ),
        ]
        indexes = [models.Index(fields=["state", "batch"])]

    def __str__(self) -> str:
        return f"{self.batch.name} #{self.seq}"

    @property
    def is_spot_check(self) -> bool:
        return self.known_output is not None
