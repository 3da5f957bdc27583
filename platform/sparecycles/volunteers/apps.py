from django.apps import AppConfig


class VolunteersConfig(AppConfig):
    name = "sparecycles.volunteers"
    verbose_name = "Volunteers and devices"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from .login_throttle import on_login_failed

        user_login_failed.connect(on_login_failed, dispatch_uid="sparecycles.login_throttle")
