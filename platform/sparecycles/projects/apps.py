from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "sparecycles.projects"
    verbose_name = "Projects and work"
