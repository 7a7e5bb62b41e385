"""The chart's alerts (promtool) and Grafana dashboard."""
