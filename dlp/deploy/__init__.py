"""dlp.deploy."""
