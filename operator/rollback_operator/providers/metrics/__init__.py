"""Metrics sources that policy rules are evaluated against: Prometheus."""
