from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "sparecycles.ledger"
    label = "ledger"
    verbose_name = "Token ledger"
