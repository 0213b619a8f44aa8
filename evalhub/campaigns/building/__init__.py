"""Building a campaign's tasks: pairs of runs, the active pair policy, the LPIPS
near-duplicate filter, gold pairs."""
