"""Notifiers of the runbook's communication plan: Slack, Statuspage, PagerDuty."""
