"""Property-based tests of the API: generated valid and invalid Rollback and RollbackPolicy."""
