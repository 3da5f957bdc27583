"""Reads for volunteers."""

from .models import Volunteer


def volunteer_tokens(volunteer: Volunteer) -> str:
    """The volunteer's token balance as a decimal string (PROTOCOL.md), from the ledger."""
    try:
        from sparecycles.ledger.selectors import tokens_str, volunteer_balance_micro
    except ImportError:  # the ledger app is optional in this build
        return "0"
    return tokens_str(volunteer_balance_micro(volunteer))
