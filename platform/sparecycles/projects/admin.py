"""Admin for project owners: upload app versions, create batches from JSONL, watch progress.

Writes go through services; forms only validate. Non-superusers see only the
projects they own (and everything below them).
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html

from sparecycles.scheduler.models import Replica

from .models import App, AppVersion, Batch, Project, WorkUnit
from .services import (
    QuorumParams,
    app_code_check,
    app_version_create,
    batch_create,
    parse_jsonl,
)

MAX_CODE_BYTES = 5 * 1024 * 1024


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


@admin.register(Project)
class ProjectAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "owners"
    list_display = ["title", "slug", "is_public", "created_at"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["owners"]
    search_fields = ["title", "slug"]


class AppVersionInline(admin.TabularInline):
    model = AppVersion
    fields = ["number", "runtime", "entry", "sha256", "flops_per_unit", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(App)
class AppAdmin(OwnedMixin, admin.ModelAdmin):
    list_display = ["name", "title", "project", "validator", "created_at"]
    list_filter = ["validator"]
    search_fields = ["name", "title"]
    inlines = [AppVersionInline]


class AppVersionAddForm(forms.ModelForm):
    code_file = forms.FileField(
        label="Code file",
        help_text="main.py for the Python runtime (it must define the entry function), "
                  "or the .wasm module.",
    )

    class Meta:
        model = AppVersion
        fields = ["app", "runtime", "entry", "flops_per_unit"]

    def clean_code_file(self):
        upload = self.cleaned_data["code_file"]
        if upload.size > MAX_CODE_BYTES:
            raise ValidationError(f"The code file is larger than {MAX_CODE_BYTES // 2**20} MiB.")
        return upload.read()

    def clean(self):
        data = super().clean()
        if data.get("code_file") is not None and data.get("runtime") and data.get("entry"):
            try:
                app_code_check(code=data["code_file"], runtime=data["runtime"],
                               entry=data["entry"])
            except ValidationError as exc:
                self.add_error("code_file", exc)
        return data


@admin.register(AppVersion)
class AppVersionAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "app__project__owners"
    list_display = ["__str__", "runtime", "entry", "short_sha256", "created_at"]
    list_filter = ["runtime", "app"]
    readonly_fields = ["app", "number", "runtime", "entry", "sha256", "packages",
                       "flops_per_unit", "code_link", "created_at"]
    exclude = ["code"]

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return obj.sha256[:12]

    @admin.display(description="Code")
    def code_link(self, obj):
        return format_html('<a href="{}">{}</a>', obj.code_url, obj.code_url)

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
        )
        # The admin goes on with `obj` (log entry, redirect): make it the created row.
        obj.__dict__.update(created.__dict__)


class BatchAddForm(forms.ModelForm):
    inputs_file = forms.FileField(
        label="Work units (JSONL)",
        help_text="One JSON object per line; each line becomes one work unit's input.",
    )
    min_quorum = forms.IntegerField(min_value=1, initial=QuorumParams.min_quorum)
    target_nresults = forms.IntegerField(min_value=1, initial=QuorumParams.target_nresults)
    max_error_results = forms.IntegerField(min_value=1, initial=QuorumParams.max_error_results)
    max_total_results = forms.IntegerField(min_value=1, initial=QuorumParams.max_total_results)
    max_success_results = forms.IntegerField(min_value=1,
                                             initial=QuorumParams.max_success_results)
    delay_bound = forms.IntegerField(min_value=1, initial=QuorumParams.delay_bound,
                                     help_text="Seconds a volunteer has to return a result.")

    class Meta:
        model = Batch
        fields = ["app_version", "name"]

    def clean_inputs_file(self):
        upload = self.cleaned_data["inputs_file"]
        try:
            return [value for _, value in parse_jsonl(upload)]
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

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
        return data


class WorkUnitProgress:
    @staticmethod
    def annotate(qs):
        return qs.annotate(
            n_total=Count("workunits"),
            n_completed=Count("workunits", filter=Q(workunits__state=WorkUnit.State.COMPLETED)),
            n_failed=Count("workunits", filter=Q(workunits__state=WorkUnit.State.FAILED)),
        )


@admin.register(Batch)
class BatchAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "app_version__app__project__owners"
    list_display = ["name", "app_version", "state", "progress", "created_at"]
    list_filter = ["state"]
    readonly_fields = ["app_version", "created_by", "created_at", "progress"]
    fields = ["name", "app_version", "state", "created_by", "created_at", "progress"]

    def get_queryset(self, request):
        return WorkUnitProgress.annotate(super().get_queryset(request))

    @admin.display(description="Progress")
    def progress(self, obj):
        total = getattr(obj, "n_total", None)
        if total is None:
            return "—"
        return f"{obj.n_completed} of {total} completed, {obj.n_failed} failed"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BatchAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["app_version", "name", "inputs_file", "min_quorum", "target_nresults",
                    "max_error_results", "max_total_results", "max_success_results",
                    "delay_bound"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = batch_create(app_version=data["app_version"], name=data["name"],
                               inputs=data["inputs_file"], quorum=data["quorum"],
                               created_by=request.user)
        obj.__dict__.update(created.__dict__)
        self.message_user(request, f"Created {len(data['inputs_file'])} work units.")


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


@admin.register(WorkUnit)
class WorkUnitAdmin(OwnedMixin, admin.ModelAdmin):
    owner_path = "batch__app_version__app__project__owners"
    list_display = ["__str__", "state", "app_version", "min_quorum", "target_nresults",
                    "completed_at"]
    list_filter = ["state", "batch"]
    list_select_related = ["batch", "app_version__app"]
    readonly_fields = ["batch", "app_version", "seq", "input", "state", "canonical_output",
                       "canonical_replica", "error_reason", "min_quorum", "target_nresults",
                       "max_error_results", "max_total_results", "max_success_results",
                       "delay_bound", "created_at", "completed_at"]
    inlines = [ReplicaInline]

    def has_add_permission(self, request):
        return False  # work units come in batches

