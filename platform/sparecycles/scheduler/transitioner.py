"""Moved to sparecycles.validation.transitioner; kept so existing imports work."""

from sparecycles.validation.transitioner import *  # noqa: F401,F403
from sparecycles.validation.transitioner import (  # noqa: F401
    Cancelled,
    Transition,
    pending_workunit_ids,
    workunit_transition,
    workunits_transition,
)
