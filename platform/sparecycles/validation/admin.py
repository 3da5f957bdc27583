"""Read-only views of validation's audit and of device credibility (superusers and owners)."""

from django.contrib import admin

from .models import DeviceCredibility, ValidationAudit


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ValidationAudit)
class ValidationAuditAdmin(ReadOnly):
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
class DeviceCredibilityAdmin(ReadOnly):
    list_display = ["device", "confirmed", "spot_checks_passed", "spot_checks_failed",
                    "minority", "last_clean_check_at", "quarantined_at"]
    readonly_fields = list_display

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
