"""Signals other apps listen to (leaderboards refresh after votes)."""

from django.dispatch import Signal

# Sent after a human vote is stored; kwargs: campaign.
vote_recorded = Signal()
