from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts on top of identity: sign-up and log-in, the dashboard, device claims,
    profiles and team pages (an edge: it may import every layer below it)."""

    name = "sparecycles.accounts"
    verbose_name = "Accounts and dashboard"
