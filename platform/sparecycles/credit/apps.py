from django.apps import AppConfig


class CreditConfig(AppConfig):
    name = "sparecycles.credit"
    verbose_name = "Credit"
