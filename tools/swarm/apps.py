from django.apps import AppConfig


class SwarmAppConfig(AppConfig):
    name = "tools.swarm"
    label = "swarm"
    verbose_name = "Simulated-volunteer swarm"
