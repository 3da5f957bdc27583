from django.contrib import admin

from .models import Device, Volunteer


class DeviceInline(admin.TabularInline):
    model = Device
    fields = ["client_name", "client_version", "capabilities", "revoked", "created_at",
              "last_seen"]
    readonly_fields = ["client_name", "client_version", "capabilities", "created_at", "last_seen"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Volunteer)
class VolunteerAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "created_at"]
    search_fields = ["name", "user__username"]
    # The cross-project id never changes (stats sites join totals by the cpid made from it);
    # verification and deletion happen only through their own flows.
    readonly_fields = ["created_at", "cross_project_id", "email_verified_at", "deleted_at"]
    inlines = [DeviceInline]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["public_id", "volunteer", "client_name", "client_version", "revoked",
                    "last_seen"]
    list_filter = ["revoked", "client_name"]
    readonly_fields = ["volunteer", "token_hash", "client_name", "client_version",
                       "capabilities", "created_at", "last_seen"]
    list_select_related = ["volunteer"]

    def has_add_permission(self, request):
        return False  # devices enrol themselves over the volunteer socket
