"""Moved to sparecycles.validation.spot_checks; kept so existing imports work."""

from sparecycles.validation.spot_checks import *  # noqa: F401,F403
from sparecycles.validation.spot_checks import (  # noqa: F401
    device_quarantine,
    device_spot_check_passed,
    spot_check_apps,
    spot_check_issue,
)
