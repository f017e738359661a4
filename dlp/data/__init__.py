"""dlp.data."""
