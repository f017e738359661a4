"""DLP's benchmarks: each prints its figures as ratios measured in one run."""
