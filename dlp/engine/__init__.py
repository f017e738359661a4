"""dlp.engine."""
