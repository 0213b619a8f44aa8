"""Quality control: gold accuracy, agreement among annotators, flags and exclusions."""
