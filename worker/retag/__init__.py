"""Re-tagging an archive: the export format, editor decisions, local and queued runs."""
