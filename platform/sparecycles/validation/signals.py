"""What validation announces to the layers above it, inside its own transaction.

Credit sits above validation, so validation does not call it: it sends these and credit
connects its one service to them (CreditConfig.ready). Receivers run in the sender's
transaction (`send`, not `send_robust`): a rollback takes their writes with it, and a
receiver that fails rolls the validation back.
"""

from django.dispatch import Signal

# replicas: Replica rows just judged VALID, work unit, app version and app loaded (the
# caller holds their work units' row locks). Credit grants for each at most once.
results_validated = Signal()

# replica_ids: results that lost their validity; reason: why, for the books. Credit
# reverses what it granted for them, at most once each.
results_invalidated = Signal()
