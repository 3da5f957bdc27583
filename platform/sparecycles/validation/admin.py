"""Read-only views of validation's audit and of device credibility (superusers and owners)."""

from django.contrib import admin

from sparecycles.db.admin import ReadOnlyAdmin

from .models import DeviceCredibility, ValidationAudit


@admin.register(ValidationAudit)
class ValidationAuditAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "workunit", "device", "credibility", "reason"]
    list_filter = ["kind"]
    list_select_related = ["workunit__batch", "device"]
    search_fields = ["reason"]
    readonly_fields = ["kind", "workunit", "device", "credibility", "reason", "details",
                       "created_at"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        # Owners see the decisions about their own work units (not quarantines of devices).
        return qs.filter(workunit__batch__app_version__app__project__owners=request.user)


@admin.register(DeviceCredibility)
class DeviceCredibilityAdmin(ReadOnlyAdmin):
    list_display = ["device", "confirmed", "spot_checks_passed", "spot_checks_failed",
                    "minority", "last_clean_check_at", "quarantined_at"]
    readonly_fields = list_display

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
