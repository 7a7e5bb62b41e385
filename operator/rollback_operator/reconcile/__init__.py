"""Domain logic: planning, the step engine, queueing and phase transitions.

Pure of kopf and of I/O clients (import-linter enforces it): everything outside comes in through
the Protocols of `ports` and `providers.base`, so it runs the same against fakes and the world.
"""
