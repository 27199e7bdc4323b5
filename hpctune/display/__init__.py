"""The driver's console output: progress reporters and the status table, over a read-only view."""
