"""Credit's answers to validation's announcements (validation.signals), connected in
CreditConfig.ready: grants and reversals go through credit's one service, inside the
validation's transaction, at most once per result (the services' unique guards)."""

from .services import credit_grant_many, credit_reverse_many


def on_results_validated(sender, *, replicas, **kwargs) -> None:
    credit_grant_many(replicas=replicas)


def on_results_invalidated(sender, *, replica_ids, reason, **kwargs) -> None:
    credit_reverse_many(replica_ids=replica_ids, reason=reason)
