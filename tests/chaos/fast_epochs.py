"""Settings for the chaos tests' epoch closer: two-second reward epochs, so tokens are paid
(and must not be paid twice) while the faults happen."""

from sparecycles.settings import *  # noqa: F403

SPARECYCLES_LEDGER = {"EPOCH_SECONDS": 2}
