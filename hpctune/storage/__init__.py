"""The shared-filesystem protocol: experiment layout, result log, atomic writes."""
