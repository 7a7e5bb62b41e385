"""Argo CD health checks and actions, and kstatus, judged on the states the operator writes."""
