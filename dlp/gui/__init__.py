"""dlp.gui."""
