"""Serving tasks to annotators: leases, votes, undo, skip, report, and their API."""
