"""Admin for credit approvals (who let which app version's FLOPs estimate stand, and when)
and a read-only view of credit reversals: credit changes only through credit.services.

Only superusers see or add approvals; rows are never changed or deleted (a revocation is a
new row). Adding goes through credit.services.flops_approve, which records who and when.
"""

from django import forms
from django.contrib import admin

from sparecycles.db.admin import ReadOnlyAdmin
from sparecycles.projects.models import AppVersion

from .models import MICRO, CreditReversal, FlopsApproval
from .services import flops_approval_revoke, flops_approve


class FlopsApprovalForm(forms.ModelForm):
    app_version = forms.ModelChoiceField(queryset=AppVersion.objects.select_related("app"))
    flops_per_unit = forms.FloatField(
        required=False, min_value=1,
        help_text="The highest estimate approved; empty: the version's current estimate.")
    revoked = forms.BooleanField(required=False, help_text="Withdraw the approval instead.")

    class Meta:
        model = FlopsApproval
        fields = ["app_version", "flops_per_unit", "revoked", "note"]

    def clean(self):
        data = super().clean()
        version = data.get("app_version")
        if data.get("revoked"):
            data["flops_per_unit"] = 0.0
        elif data.get("flops_per_unit") is None and version is not None:
            data["flops_per_unit"] = version.flops_per_unit
        return data


@admin.register(FlopsApproval)
class FlopsApprovalAdmin(admin.ModelAdmin):
    form = FlopsApprovalForm
    list_display = ["app_version", "declared", "approved", "revoked", "approved_by",
                    "approved_at", "note"]
    list_filter = ["revoked"]
    list_select_related = ["app_version__app", "approved_by"]
    search_fields = ["app_version__app__name", "approved_by__username", "note"]

    @admin.display(description="declared FLOPs now")
    def declared(self, obj) -> str:
        return f"{obj.app_version.flops_per_unit:g}"

    @admin.display(description="approved FLOPs")
    def approved(self, obj) -> str:
        return "—" if obj.revoked else f"{obj.flops_per_unit:g}"

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if data.get("revoked"):
            saved = flops_approval_revoke(app_version=data["app_version"], by=request.user,
                                          note=data.get("note") or "")
        else:
            saved = flops_approve(app_version=data["app_version"], by=request.user,
                                  flops_per_unit=data["flops_per_unit"],
                                  note=data.get("note") or "")
        obj.pk = saved.pk
        obj.approved_by, obj.approved_at = saved.approved_by, saved.approved_at



@admin.register(CreditReversal)
class CreditReversalAdmin(ReadOnlyAdmin):
    list_display = ["grant", "replica", "volunteer", "project", "team", "credit", "reason",
                    "reversed_at"]
    list_filter = ["project"]
    search_fields = ["reason", "volunteer__name"]
    list_select_related = ["grant", "replica", "volunteer", "project", "team"]
    date_hierarchy = "reversed_at"

    @admin.display(description="Credit reversed", ordering="amount_micro")
    def credit(self, obj):
        return f"{obj.amount_micro / MICRO:.6f}"
