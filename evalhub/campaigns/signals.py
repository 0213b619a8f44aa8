"""Signals other apps listen to (leaderboards refresh after votes)."""

from django.dispatch import Signal

# Sent after a human vote is stored or undone; kwargs: campaign, kind ("vote" or "undo").
vote_recorded = Signal()

# Sent once a transaction that marked leases expired because their time ran out (an annotator
# left the pair) has committed; kwargs: count.
leases_expired = Signal()
