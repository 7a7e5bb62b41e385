"""Session fixtures that start the sandbox's real services (`sandbox.services`) for the tests."""
