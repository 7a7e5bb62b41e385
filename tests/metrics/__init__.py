"""Tests of RollbackPolicy rules against a real Prometheus: the adapter, evaluation, actions."""
