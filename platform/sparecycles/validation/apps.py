from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "sparecycles.validation"
    verbose_name = "Validation (quorum, credibility, spot checks)"
