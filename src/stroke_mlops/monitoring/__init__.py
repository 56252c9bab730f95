"""Monitoring: the reference set per model version, windows of logged requests, drift tests,
feedback labels and the monitor's summary and report."""
