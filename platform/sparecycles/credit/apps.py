from django.apps import AppConfig


class CreditConfig(AppConfig):
    name = "sparecycles.credit"
    verbose_name = "Credit"

    def ready(self):
        # Validation sits below credit: it announces, credit grants and reverses.
        from sparecycles.validation.signals import results_invalidated, results_validated

        from . import receivers

        results_validated.connect(receivers.on_results_validated,
                                  dispatch_uid="credit.grant")
        results_invalidated.connect(receivers.on_results_invalidated,
                                    dispatch_uid="credit.reverse")
