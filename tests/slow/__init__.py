"""Long-running suites (load): run by `make test-slow`."""
