from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "sparecycles.validation"
    verbose_name = "Validation (quorum, credibility, spot checks)"

    def ready(self):
        # Dispatch (below us) asks these through scheduler.trust rather than importing us.
        from sparecycles.scheduler.trust import Trust, trust_register

        from . import credibility, spot_checks

        trust_register(Trust(standings=credibility.standings,
                             device_spot_check_rate=spot_checks.device_spot_check_rate,
                             spot_check_issue=spot_checks.spot_check_issue,
                             spot_check_apps=spot_checks.spot_check_apps,
                             spot_check_round=spot_checks.spot_check_round))
