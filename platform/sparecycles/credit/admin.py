"""Read-only admin view of credit reversals: credit changes only through credit.services."""

from django.contrib import admin

from .models import MICRO, CreditReversal


@admin.register(CreditReversal)
class CreditReversalAdmin(admin.ModelAdmin):
    list_display = ["grant", "replica", "volunteer", "project", "team", "credit", "reason",
                    "reversed_at"]
    list_filter = ["project"]
    search_fields = ["reason", "volunteer__name"]
    list_select_related = ["grant", "replica", "volunteer", "project", "team"]
    date_hierarchy = "reversed_at"

    @admin.display(description="Credit reversed", ordering="amount_micro")
    def credit(self, obj):
        return f"{obj.amount_micro / MICRO:.6f}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
