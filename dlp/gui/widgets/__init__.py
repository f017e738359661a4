"""Small widgets shared by DLP's tabs."""
