from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "sparecycles.web"
    verbose_name = "Web pages"
