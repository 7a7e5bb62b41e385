"""The operator's own signals: Prometheus metrics on /metrics and log lines with their context.

`metrics` owns the instruments and the HTTP server, `observe` decides from the status before
and after a save what just happened (so each outcome is counted once, also across restarts),
`states` turns the watched objects into gauges of what each one is now, and `logs` formats
lines as text or JSON with the rollback, step or policy they are about.
"""
