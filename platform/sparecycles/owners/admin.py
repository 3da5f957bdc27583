"""Admin for project owners: apps and their validators, app versions (code, wheels, wasm),
batches from JSONL or CSV uploads of any size, batch life cycle, progress and failures.

Writes go through services; forms only validate. Non-superusers see only the
projects they own (and everything below them), and only superusers choose owners.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Count, Q
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

# The admin is an edge: it may call the scheduler (above projects) for what touches replicas.
from sparecycles.errors import error_response
from sparecycles.projects.code_checks import wheels_check
from sparecycles.projects.exports import export_async, export_sync
from sparecycles.projects.inputs import format_for, inputs_scan
from sparecycles.projects.models import App, AppVersion, Batch, Project, Runtime, WorkUnit
from sparecycles.projects.selectors import app_version_warnings
from sparecycles.projects.services import (
    APP_FIELDS,
    MAX_CODE_BYTES,
    BatchStateError,
    QuorumParams,
    app_create,
    app_update,
    app_validator_check,
    app_version_check,
    app_version_create,
    batch_create_from_file,
    batch_pause,
    batch_resume,
    project_owner_add,
)
from sparecycles.projects.uploads import upload_job_get, upload_job_start
from sparecycles.scheduler.batches import batch_abort, batch_retire
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.selectors import batch_status

# Uploads up to this many work units are inserted during the request; larger ones by a
# background thread while the owner watches a progress bar.
SYNC_MAX_UNITS = 5000


class OwnedMixin:
    """Scope every queryset and choice to projects the user owns, unless superuser."""

    owner_path = "project__owners"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self.owner_path: request.user}).distinct()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if not request.user.is_superuser:
            model = db_field.related_model
            paths = {Project: "owners", App: "project__owners",
                     AppVersion: "app__project__owners"}
            if model in paths:
                field.queryset = field.queryset.filter(**{paths[model]: request.user}).distinct()
        return field


# --- projects ----------------------------------------------------------------------------

@admin.register(Project)
class ProjectAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "owners"
    list_display = ["title", "slug", "is_public", "public_page", "created_at"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["owners"]
    search_fields = ["title", "slug"]

    @admin.display(description="Public page")
    def public_page(self, obj):
        url = reverse("projects:detail", args=[obj.slug])
        return format_html('<a href="{}">{}</a>', url, url) if obj.is_public else "—"

    def get_fields(self, request, obj=None):
        fields = ["title", "slug", "description", "is_public"]
        # Only superusers choose owners: an owner must not browse the list of all accounts.
        return fields + ["owners"] if request.user.is_superuser else fields

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj is not None else []

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        project = form.instance
        if not request.user.is_superuser:
            project_owner_add(project=project, user=request.user)
        for user in project.owners.all():
            project_owner_add(project=project, user=user)


# --- apps --------------------------------------------------------------------------------

class AppVersionInline(admin.TabularInline):
    model = AppVersion
    fields = ["number", "runtime", "entry", "sha256", "flops_per_unit", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class AppForm(forms.ModelForm):
    class Meta:
        model = App
        fields = ["project", "name", *APP_FIELDS]

    def clean(self):
        data = super().clean()
        validator = data.get("validator", self.instance.validator)
        if validator:
            try:
                app_validator_check(validator=validator,
                                    options=data.get("validator_options") or {},
                                    code=data.get("validate_code") or "")
            except ValidationError as exc:
                field = {"tolerance": "validator_options", "custom": "validate_code"}.get(
                    validator, "validator")
                self.add_error(field if field in self.fields else None, exc)
        return data


@admin.register(App)
class AppAdmin(OwnedMixin, admin.ModelAdmin):
    form = AppForm
    list_display = ["name", "title", "project", "validator", "output_view", "created_at"]
    list_filter = ["validator"]
    search_fields = ["name", "title"]
    inlines = [AppVersionInline]
    fieldsets = [
        (None, {"fields": ["project", "name", "title", "description"]}),
        ("Validation", {"fields": ["validator", "validator_options", "validate_code"],
                        "description": "How replicas' outputs are compared before a result "
                                       "is accepted."}),
        ("Scheduling", {"fields": ["adaptive_replication", "adaptive_threshold",
                                   "spot_check_rate", "credibility_threshold",
                                   "min_memory_mb", "allow_mobile"]}),
        ("Public page", {"fields": ["output_view"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The name is in code URLs and task payloads, the project in every ownership check.
        return ["project", "name"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in APP_FIELDS if name in data}
        if change:
            app_update(app=obj, **fields)
        else:
            created = app_create(project=data["project"], name=data["name"],
                                 title=fields.pop("title"), **fields)
            obj.__dict__.update(created.__dict__)


# --- app versions ------------------------------------------------------------------------

class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class AppVersionAddForm(forms.ModelForm):
    code_file = forms.FileField(
        label="Code file",
        help_text="main.py for the Python runtime (it must define the entry function), "
                  "or the .wasm module (see docs/wasm-abi.md; the entry is the exported "
                  "function to call, usually run).",
    )
    wheel_files = MultipleFileField(
        label="Wheels", required=False,
        help_text="Optional pure-Python wheels (*-py3-none-any.whl) main.py imports. They are "
                  "served from this site and installed in the volunteer's worker.",
    )

    class Meta:
        model = AppVersion
        fields = ["app", "runtime", "entry", "flops_per_unit"]
        help_texts = {"flops_per_unit": "Operations one work unit really costs: credit is "
                                        "measured against it. The default, 1e9, is a guess "
                                        "and is warned about."}

    def clean_code_file(self):
        upload = self.cleaned_data["code_file"]
        if upload.size > MAX_CODE_BYTES:
            raise ValidationError(f"The code file is larger than {MAX_CODE_BYTES // 2**20} MiB.")
        return upload.read()

    def clean_wheel_files(self):
        wheels = [(upload.name, upload.read()) for upload in self.cleaned_data["wheel_files"]]
        if wheels:
            wheels_check(wheels)
        return wheels

    def clean(self):
        data = super().clean()
        if data.get("code_file") is not None and data.get("runtime") and data.get("entry"):
            try:  # the service's own rules (app_version_create runs them again)
                app_version_check(code=data["code_file"], runtime=data["runtime"],
                                  entry=data["entry"])
            except ValidationError as exc:
                self.add_error("code_file", exc)
        if data.get("wheel_files") and data.get("runtime") == Runtime.WASM:
            self.add_error("wheel_files", "Wheels are for the Python runtime; a wasm module "
                                          "needs none.")
        return data


@admin.register(AppVersion)
class AppVersionAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "app__project__owners"
    list_display = ["__str__", "runtime", "entry", "short_sha256", "created_at"]
    list_filter = ["runtime", ("app", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["app", "number", "runtime", "entry", "sha256", "packages",
                       "flops_per_unit", "warnings", "code_link", "wheel_links", "created_at"]
    exclude = ["code"]

    @admin.display(description="Warnings")
    def warnings(self, obj):
        rows = app_version_warnings(app_version=obj)
        if not rows:
            return "None."
        return format_html_join("", '<p class="batch-warning">{}</p>',
                                ((row["text"],) for row in rows))

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return obj.sha256[:12]

    @admin.display(description="Code")
    def code_link(self, obj):
        return format_html('<a href="{}">{}</a>', obj.code_url, obj.code_url)

    @admin.display(description="Wheels")
    def wheel_links(self, obj):
        wheels = list(obj.wheels.all())
        if not wheels:
            return "—"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> ({} bytes)',
                                ((obj.wheel_url(w.filename), w.filename, w.size) for w in wheels))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AppVersionAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_exclude(self, request, obj=None):
        return ["code", "sha256", "number", "packages"] if obj is None else self.exclude

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = app_version_create(
            app=data["app"], code=data["code_file"], runtime=data["runtime"],
            entry=data["entry"], flops_per_unit=data["flops_per_unit"],
            wheels=data.get("wheel_files") or [],
        )
        # The admin goes on with `obj` (log entry, redirect): make it the created row.
        obj.__dict__.update(created.__dict__)
        for warning in app_version_warnings(app_version=created):
            self.message_user(request, warning["text"], level=messages.WARNING)


# --- batches -----------------------------------------------------------------------------

class BatchAddForm(forms.ModelForm):
    inputs_file = forms.FileField(
        label="Work units (JSONL or CSV)",
        help_text="JSONL: one JSON object per line, each line one work unit's input. CSV: a "
                  "header row naming the input fields, then one row per work unit; a cell "
                  "that is valid JSON (12, true, [1, 2]) is read as JSON, anything else as "
                  "text. Every line is checked first: bad lines are listed by number and "
                  "nothing is created.",
    )
    format = forms.ChoiceField(
        choices=[("", "From the file name (.csv is CSV, anything else JSONL)"),
                 ("jsonl", "JSONL"), ("csv", "CSV")], required=False)
    min_quorum = forms.IntegerField(min_value=1, max_value=1000,
                                    initial=QuorumParams.min_quorum)
    target_nresults = forms.IntegerField(min_value=1, max_value=1000,
                                         initial=QuorumParams.target_nresults)
    max_error_results = forms.IntegerField(min_value=1, max_value=1000,
                                           initial=QuorumParams.max_error_results)
    max_total_results = forms.IntegerField(min_value=1, max_value=1000,
                                           initial=QuorumParams.max_total_results)
    max_success_results = forms.IntegerField(min_value=1, max_value=1000,
                                             initial=QuorumParams.max_success_results)
    delay_bound = forms.IntegerField(min_value=1, max_value=365 * 86400,
                                     initial=QuorumParams.delay_bound,
                                     help_text="Seconds a volunteer has to return a result.")

    class Meta:
        model = Batch
        fields = ["app_version", "name"]

    def clean(self):
        data = super().clean()
        names = QuorumParams.__dataclass_fields__
        if all(data.get(n) is not None for n in names):
            quorum = QuorumParams(**{n: data[n] for n in names})
            try:
                quorum.check()
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
            data["quorum"] = quorum
        upload = data.get("inputs_file")
        if upload is not None:
            try:
                fmt = format_for(upload.name, data.get("format"))
                data["scan"] = inputs_scan(upload, fmt)
                data["fmt"] = fmt
            except ValidationError as exc:
                # The browser drops the chosen file on a failed post (no page may set a
                # file input); every other field comes back filled in.
                self.add_error("inputs_file", ValidationError(
                    [*exc.messages, "Nothing was created. Fix these lines and choose the "
                                    "corrected file again; the other fields are kept."]))
            finally:
                upload.seek(0)
        return data


class WorkUnitProgress:
    @staticmethod
    def annotate(qs):
        return qs.annotate(
            n_total=Count("workunits"),
            n_open=Count("workunits", filter=Q(workunits__state=WorkUnit.State.OPEN)),
            n_completed=Count("workunits", filter=Q(workunits__state=WorkUnit.State.COMPLETED)),
            n_failed=Count("workunits", filter=Q(workunits__state=WorkUnit.State.FAILED)),
        )


def status_render(batch: Batch) -> str:
    """The batch's status block (templates/admin/projects/batch/_status.html)."""
    status = batch_status(batch=batch)
    settled = status["completed"] + status["failed"] + status["cancelled"]
    percent = round(100 * settled / status["total"]) if status["total"] else 0
    return render_to_string("admin/projects/batch/_status.html",
                            {"status": status, "percent": percent})


LIFECYCLE = {
    "pause": (batch_pause, "Paused: no new tasks go out until you resume it."),
    "resume": (batch_resume, "Resumed: its tasks go out again."),
    "abort": (batch_abort, "Aborted: unfinished work units were cancelled; results so far "
                           "are kept."),
    "retire": (batch_retire, "Retired: what was left is cancelled; results stay downloadable."),
}


@admin.register(Batch)
class BatchAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "app_version__app__project__owners"
    list_display = ["name", "app_version", "state_shown", "progress", "created_at"]
    list_filter = ["state", ("app_version__app", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["app_version", "created_by", "created_at", "status", "controls",
                       "downloads"]
    fields = ["name", "app_version", "created_by", "created_at", "status", "downloads",
              "controls"]
    actions = ["pause_batches", "resume_batches", "abort_batches", "retire_batches"]

    class Media:
        css = {"all": ["projects/batch-status.css"]}
        js = ["projects/live.js"]

    def get_queryset(self, request):
        return WorkUnitProgress.annotate(super().get_queryset(request))

    @admin.display(description="Progress")
    def progress(self, obj):
        total = getattr(obj, "n_total", None)
        if total is None:
            return "—"
        percent = round(100 * (obj.n_completed + obj.n_failed) / total) if total else 0
        return format_html(
            '<progress max="100" value="{}" class="batch-progress"></progress> '
            "{} of {} completed, {} failed",
            percent, obj.n_completed, total, obj.n_failed)

    @admin.display(description="State", ordering="state")
    def state_shown(self, obj):
        """As owners read it: an open or paused batch with nothing left open is completed."""
        if obj.state in (Batch.State.OPEN, Batch.State.PAUSED) and obj.n_total \
                and not obj.n_open:
            return "completed"
        return obj.state

    @admin.display(description="Status")
    def status(self, obj):
        """Where the batch is and why, in words (scheduler.selectors.batch_status), kept
        live: live.js refetches status_view when the batch's socket says it changed."""
        return format_html(
            '<p class="batch-live-note" id="batch-live" data-state="off" hidden>Updates '
            "live as volunteers work.</p>"
            '<div id="batch-status" data-live-url="{}" data-live-ws="/ws/batches/{}/" '
            'data-live-status="batch-live">{}</div>',
            reverse("admin:projects_batch_status", args=[obj.pk]), obj.pk,
            mark_safe(status_render(obj)))  # rendered by the template, escaped there

    @admin.display(description="Results")
    def downloads(self, obj):
        # From the admin, with the owner's session (the API takes only a token: the same
        # files are at /api/v1/batches/<id>/results.jsonl and .csv for programs).
        return format_html(
            '<a href="{}" download>JSONL</a> · <a href="{}" download>CSV</a> '
            '<span class="help">(CSV columns: seq, input.&lt;key&gt;…, output.&lt;key&gt;…, '
            "revalidated)</span>",
            reverse("admin:projects_batch_results", args=[obj.pk, "jsonl"]),
            reverse("admin:projects_batch_results", args=[obj.pk, "csv"]))

    @admin.display(description="Life cycle")
    def controls(self, obj):
        allowed = {
            Batch.State.OPEN: ["pause", "abort", "retire"],
            Batch.State.PAUSED: ["resume", "abort", "retire"],
            Batch.State.ABORTED: ["retire"],
            Batch.State.RETIRED: [],
        }[obj.state]
        if not allowed:
            return "Retired: nothing left to do."
        return format_html_join(" ", '<button type="submit" class="button" name="_lifecycle" '
                                     'formaction="{}">{}</button>',
                                ((reverse("admin:projects_batch_lifecycle", args=[obj.pk, a]),
                                  a.capitalize()) for a in allowed))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BatchAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["app_version", "name", "inputs_file", "format", "min_quorum",
                    "target_nresults", "max_error_results", "max_total_results",
                    "max_success_results", "delay_bound"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/<str:job_id>/", wrap(self.upload_progress_view),
                 name="projects_batch_upload"),
            path("upload/<str:job_id>/status", wrap(self.upload_status_view),
                 name="projects_batch_upload_status"),
            path("<int:pk>/lifecycle/<str:action>/", wrap(require_POST(self.lifecycle_view)),
                 name="projects_batch_lifecycle"),
            path("<int:pk>/status/", wrap(self.status_view), name="projects_batch_status"),
            path("<int:pk>/results.<str:fmt>", wrap(self.results_view),
                 name="projects_batch_results"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "POST" and self.has_add_permission(request):
            form = self.get_form(request, None)(request.POST, request.FILES)
            if form.is_valid() and form.cleaned_data["scan"].count > SYNC_MAX_UNITS:
                data = form.cleaned_data
                job = upload_job_start(upload=data["inputs_file"], total=data["scan"].count,
                                       app_version=data["app_version"], name=data["name"],
                                       fmt=data["fmt"], quorum=data["quorum"], user=request.user)
                return HttpResponseRedirect(reverse("admin:projects_batch_upload",
                                                    args=[job.id]))
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = batch_create_from_file(app_version=data["app_version"], name=data["name"],
                                         file=data["inputs_file"], fmt=data["fmt"],
                                         quorum=data["quorum"], created_by=request.user)
        obj.__dict__.update(created.__dict__)
        self.message_user(request, f"Created {data['scan'].count} work units.")

    def upload_progress_view(self, request, job_id):
        job = upload_job_get(job_id=job_id, user=request.user)
        if job is None:
            raise Http404("No such upload.")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": f"Creating “{job.name}”", "job": job.as_dict(),
                   "status_url": reverse("admin:projects_batch_upload_status", args=[job.id]),
                   "list_url": reverse("admin:projects_batch_changelist")}
        return TemplateResponse(request, "admin/projects/batch/upload_progress.html", context)

    def upload_status_view(self, request, job_id):
        job = upload_job_get(job_id=job_id, user=request.user)
        if job is None:
            return error_response(404, "No such upload.")
        status = job.as_dict()
        if job.batch_id:
            status["batch_url"] = reverse("admin:projects_batch_change", args=[job.batch_id])
        return JsonResponse(status)

    def status_view(self, request, pk):
        """The status block alone, for live.js (the owner's scope, as the page)."""
        batch = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        response = HttpResponse(status_render(batch))
        response["Cache-Control"] = "no-store"
        return response

    def results_view(self, request, pk, fmt):
        """The validated results as one streamed file (projects/exports.py)."""
        if fmt not in ("jsonl", "csv"):
            raise Http404("Results come as .jsonl or .csv.")
        batch = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        stream = (export_async(batch, fmt) if isinstance(request, ASGIRequest)
                  else export_sync(batch, fmt))
        response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8"
                                         if fmt == "csv" else "application/jsonl")
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}-results.{fmt}"'
        return response

    def lifecycle_view(self, request, pk, action):
        if action not in LIFECYCLE:
            raise Http404("Unknown action.")
        batch = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, batch):
            raise PermissionDenied
        function, message = LIFECYCLE[action]
        try:
            function(batch=batch)
            self.message_user(request, f"{batch.name}: {message}")
        except BatchStateError as exc:
            self.message_user(request, f"{batch.name}: {exc}", level=messages.ERROR)
        return HttpResponseRedirect(reverse("admin:projects_batch_change", args=[pk]))

    def _apply(self, request, queryset, action):
        function, message = LIFECYCLE[action]
        done, refused = 0, []
        for batch in queryset:
            try:
                function(batch=batch)
                done += 1
            except BatchStateError as exc:
                refused.append(f"{batch.name}: {exc}")
        if done:
            self.message_user(request, f"{done} batch(es): {message}")
        for text in refused:
            self.message_user(request, text, level=messages.ERROR)

    @admin.action(description="Pause the selected batches", permissions=["change"])
    def pause_batches(self, request, queryset):
        self._apply(request, queryset, "pause")

    @admin.action(description="Resume the selected batches", permissions=["change"])
    def resume_batches(self, request, queryset):
        self._apply(request, queryset, "resume")

    @admin.action(description="Abort the selected batches (cancel unfinished work)",
                  permissions=["change"])
    def abort_batches(self, request, queryset):
        self._apply(request, queryset, "abort")

    @admin.action(description="Retire the selected batches", permissions=["change"])
    def retire_batches(self, request, queryset):
        self._apply(request, queryset, "retire")


# --- work units --------------------------------------------------------------------------

class ReplicaInline(admin.TabularInline):
    model = Replica
    fields = ["task_id", "device", "status", "sent_at", "deadline", "received_at",
              "elapsed_ms", "output", "error_message"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="Status")
    def status(self, obj):
        return obj.status

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may see the work unit (already scoped to their projects) sees its replicas,
        # without a permission on every replica in the scheduler's admin.
        return request.user.has_perm("projects.view_workunit") or super().has_view_permission(
            request, obj)


@admin.register(WorkUnit)
class WorkUnitAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "batch__app_version__app__project__owners"
    list_display = ["__str__", "state", "app_version", "min_quorum", "target_nresults",
                    "error_reason", "completed_at", "revalidated_at"]
    list_filter = ["state", ("batch", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["batch", "app_version__app"]
    readonly_fields = ["batch", "app_version", "seq", "input", "state", "canonical_output",
                       "canonical_replica", "error_reason", "min_quorum", "target_nresults",
                       "max_error_results", "max_total_results", "max_success_results",
                       "delay_bound", "created_at", "completed_at", "revalidated_at"]
    inlines = [ReplicaInline]

    def has_add_permission(self, request):
        return False  # work units come in batches

    def has_change_permission(self, request, obj=None):
        return False  # they change through the scheduler, not by hand
