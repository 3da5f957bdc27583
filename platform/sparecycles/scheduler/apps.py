from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "sparecycles.scheduler"
    verbose_name = "Scheduling and validation"

    def ready(self) -> None:
        from sparecycles.projects.signals import workunits_created

        from .batches import on_workunits_created

        # projects is below the scheduler: it announces new work units, this issues replicas.
        workunits_created.connect(on_workunits_created, dispatch_uid="scheduler-replicas")
