"""dlp.train."""
