from django.contrib import admin

from .models import Replica


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ["task_id", "workunit", "device", "status", "sent_at", "deadline",
                    "received_at", "elapsed_ms"]
    list_filter = ["server_state", "outcome", "validate_state"]
    list_select_related = ["workunit__batch", "device__volunteer"]
    search_fields = ["task_id"]
    readonly_fields = [f.name for f in Replica._meta.fields] + ["status"]

    @admin.display(description="Status")
    def status(self, obj):
        return obj.status

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(workunit__batch__app_version__app__project__owners=request.user).distinct()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
