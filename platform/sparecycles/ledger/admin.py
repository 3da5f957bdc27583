"""Read-only admin views of the ledger: tokens move only through ledger.services."""

from django.contrib import admin

from sparecycles.db.admin import ReadOnlyAdmin

from .models import Account, Epoch, JournalEntry, PolicyVersion, ReversalClaim
from .units import tokens_str


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "kind", "balance", "volunteer", "created_at"]
    list_filter = ["kind"]
    search_fields = ["code"]

    @admin.display(description="Balance (tokens)", ordering="balance_micro")
    def balance(self, obj):
        return tokens_str(obj.balance_micro)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "kind", "at", "memo", "hash"]
    list_filter = ["kind"]
    search_fields = ["hash", "memo"]


@admin.register(Epoch)
class EpochAdmin(ReadOnlyAdmin):
    list_display = ["index", "starts_at", "ends_at", "emission", "credit_micro", "recipients",
                    "merkle_root"]

    @admin.display(description="Emission (tokens)", ordering="emission_micro")
    def emission(self, obj):
        return tokens_str(obj.emission_micro)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "effective_from_epoch", "starts_at", "epoch_seconds",
                    "initial_emission_micro", "halving_epochs", "max_supply_micro", "announced_at"]


@admin.register(ReversalClaim)
class ReversalClaimAdmin(ReadOnlyAdmin):
    """How each credit reversal was accounted: out of an open epoch's basis, or a debt."""

    list_display = ["reversal", "kind", "account", "charged", "credit_epoch", "closed_in",
                    "credit", "tokens", "entry"]
    list_filter = ["kind"]
    search_fields = ["account__code"]
    list_select_related = ["account", "charged", "credit_epoch", "closed_in", "entry",
                           "reversal"]

    @admin.display(description="Credit reversed", ordering="credit_micro")
    def credit(self, obj):
        return tokens_str(obj.credit_micro)

    @admin.display(description="Tokens owed (clawback)", ordering="tokens_micro")
    def tokens(self, obj):
        return tokens_str(obj.tokens_micro)
