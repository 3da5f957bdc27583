"""Sent after commit, never from inside a ledger transaction."""

from django.dispatch import Signal

# kwargs: index (int), volunteer_ids (list[int]) — whose balances changed
epoch_closed = Signal()
