"""Signals other apps listen to (leaderboards refresh after votes)."""

from django.dispatch import Signal

# Sent after a human vote is stored or undone; kwargs: campaign, kind ("vote" or "undo").
vote_recorded = Signal()
