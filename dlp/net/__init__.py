"""dlp.net."""
