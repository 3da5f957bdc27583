from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "sparecycles.projects"
    verbose_name = "Projects and work"

    def ready(self) -> None:
        from . import uploads  # noqa: F401  (registers the upload job's handler)
